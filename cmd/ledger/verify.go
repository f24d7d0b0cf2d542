package main

import (
	"context"
	"errors"
	"fmt"

	"perfledger/domain"
)

func runVerify(ctx context.Context, env *environment, args []string) error {
	var (
		c      dataConfig
		digest string
		at     string
	)
	fs := newFlags(env, "verify", "verify [--data DIR] [--digest D --at P]\n\nRecomputes every stream's hash chain and reports the first broken link (exit 1).\nPrints the ledger digest (a Merkle root over the event hashes in global order).\nWith --digest and --at, proves that the ledger up to position P is unchanged.")
	addDataFlags(fs, env, &c)
	addStoreFlag(fs, env, &c)
	fs.StringVar(&digest, "digest", "", "a digest written down earlier")
	fs.StringVar(&at, "at", "", "the position the digest was taken at")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if (digest == "") != (at == "") {
		return usageErr("--digest and --at go together")
	}
	var atPos domain.Position
	if at != "" {
		p, err := domain.ParsePosition(at)
		if err != nil {
			return usageErr("--at: %v", err)
		}
		atPos = p
	}
	store, err := openExisting(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := domain.VerifyLog(ctx, store, atPos)
	var ce *domain.ChainError
	if errors.As(err, &ce) {
		fmt.Fprintf(env.stdout, "BROKEN: stream %s revision %d: %s expected %s, found %s (after %d good events)\n",
			ce.Stream, ce.Revision, ce.Field, ce.Expected, ce.Found, rep.Events)
		return errors.New("hash chain broken")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "ok: %d events verified up to position %s\ndigest %s at %s\n", rep.Events, rep.Last, rep.Digest, rep.Last)
	if digest != "" {
		if digest != rep.Digest {
			fmt.Fprintf(env.stdout, "MISMATCH: the digest at %s was %s and is now %s: the ledger up to %s was changed\n", rep.Last, digest, rep.Digest, rep.Last)
			return errors.New("digest mismatch")
		}
		fmt.Fprintf(env.stdout, "digest matches: the ledger up to position %s is unchanged\n", rep.Last)
	}
	return nil
}

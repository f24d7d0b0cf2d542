package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"perfledger/domain"
)

func runMigrate(ctx context.Context, env *environment, args []string) error {
	var from, to string
	fs := newFlags(env, "migrate", `migrate --from DIR --to esdb://HOST:2113?tls=false

Copies every event of an embedded ledger (its data folder) into EventStoreDB, in
global order, keeping ids, types, times and hashes. Safe to run again: it
resumes after the last event already copied and never duplicates one. At the
end it verifies that the counts match, that every hash chain holds and that
both logs have the same digest.`)
	fs.StringVar(&from, "from", "", "embedded data folder to copy from (required)")
	fs.StringVar(&to, "to", "", "EventStoreDB URL to copy to (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if from == "" || to == "" {
		return usageErr("--from and --to are both required")
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	srcCfg := dataConfig{Dir: from}
	dstCfg := dataConfig{Dir: from, Store: to}
	if err := dstCfg.Validate(); err != nil {
		return err
	}
	if dstCfg.Store == "" || dstCfg.Store == "sqlite" {
		return usageErr("--to must be an esdb:// URL")
	}
	src, err := openExisting(ctx, srcCfg)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStore(ctx, dstCfg)
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := migrate(ctx, src, dst, func(done uint64, at domain.Position) {
		fmt.Fprintf(env.stderr, "migrate: %d events copied (source position %s)\n", done, at)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "migrated to %s: %d events (%d already there, %d copied now); chains verified; digest %s\n",
		redactURL(to), rep.Total, rep.Skipped, rep.Copied, rep.Digest)
	return nil
}

type migrateReport struct {
	Total, Skipped, Copied uint64
	Digest                 string
}

// migrate copies src's log into dst after the events dst already holds (which
// must be a prefix of src's log), then verifies dst against src. progress is
// called every few seconds.
func migrate(ctx context.Context, src, dst domain.EventStore, progress func(uint64, domain.Position)) (migrateReport, error) {
	var rep migrateReport
	// What is there already: a prefix of the source log, in the same order.
	var have []string
	for e, err := range dst.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			return rep, fmt.Errorf("read target: %w", err)
		}
		have = append(have, e.ID)
	}
	last := time.Now()
	var n uint64
	for e, err := range src.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			return rep, fmt.Errorf("read source: %w", err)
		}
		if n < uint64(len(have)) {
			if have[n] != e.ID {
				return rep, fmt.Errorf("the target already holds a different log: its event %d is %s, the source's is %s (%s revision %d)", n+1, have[n], e.ID, e.Stream, e.Revision)
			}
			n++
			rep.Skipped++
			continue
		}
		if err := copyEvent(ctx, dst, e); err != nil {
			return rep, fmt.Errorf("copy event %d (%s revision %d): %w", n+1, e.Stream, e.Revision, err)
		}
		n++
		rep.Copied++
		if progress != nil && time.Since(last) > 3*time.Second {
			progress(n, e.Position)
			last = time.Now()
		}
	}
	rep.Total = n
	// Verify: same count, intact chains, same hashes in the same order.
	srcRep, err := domain.VerifyLog(ctx, src, domain.Position{})
	if err != nil {
		return rep, fmt.Errorf("verify source: %w", err)
	}
	dstRep, err := domain.VerifyLog(ctx, dst, domain.Position{})
	if err != nil {
		return rep, fmt.Errorf("verify target: %w", err)
	}
	switch {
	case dstRep.Events != srcRep.Events:
		return rep, fmt.Errorf("verify: target holds %d events, source %d", dstRep.Events, srcRep.Events)
	case dstRep.Digest != srcRep.Digest:
		return rep, errors.New("verify: the target's digest differs from the source's: hashes were not kept")
	}
	rep.Digest = dstRep.Digest
	return rep, nil
}

// redactURL drops credentials from a store URL before it is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("***")
	return u.String()
}

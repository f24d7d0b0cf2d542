package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"perfledger/projections"
)

func runRebuild(ctx context.Context, env *environment, args []string) error {
	var c dataConfig
	fs := newFlags(env, "rebuild", `rebuild [--data DIR] [projection ...]

Rebuilds the named read models from the event log into fresh tables, then
swaps them in and drops the old ones. With no names, every read model is
rebuilt into new database files (in DIR/rebuilding meanwhile, written
without a journal, which is faster), which then replace the old ones; if the
rebuild fails or is interrupted, the old ones stay as they were. The read
models of a running `+"`ledger serve`"+` are rebuilt by that process at start when
their version changes; this command needs the server stopped (it says so if
it is not).`)
	addDataFlags(fs, env, &c)
	addStoreFlag(fs, env, &c)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := mustExist(c); err != nil {
		return err
	}
	known := map[string]bool{}
	var all []string
	for _, f := range append(projections.All(), projections.PolicyFacts) {
		n := f("").Name()
		known[n] = true
		all = append(all, n)
	}
	names := fs.Args()
	for _, n := range names {
		if !known[n] {
			return usageErr("unknown projection %q; known: %v", n, all)
		}
	}
	unlock, err := lockData(c)
	if err != nil {
		return err
	}
	defer unlock()
	store, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(env.stderr, nil))
	if len(names) == 0 {
		start := time.Now()
		if err := rebuildViews(ctx, c, store, logger); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "rebuilt %v in %s\n", all, time.Since(start).Round(time.Millisecond))
		return nil
	}
	views, err := openViews(ctx, c, 1, 1)
	if err != nil {
		return err
	}
	defer views.Close()
	cfg := views.runnerConfig()
	cfg.Logger = logger
	r, err := projections.NewRunner(ctx, cfg)
	if err != nil {
		return err
	}
	if _, err := r.DropRetired(ctx); err != nil { // it logs what it drops
		return err
	}
	start := time.Now()
	if err := r.Rebuild(ctx, store, names...); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	fmt.Fprintf(env.stdout, "rebuilt %v in %s\n", names, time.Since(start).Round(time.Millisecond))
	return nil
}

// lockData takes the data folder's exclusive lock, held by `ledger serve`
// for its lifetime, so that two processes never run projections on one
// read-model database.
func lockData(c dataConfig) (func(), error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(c.Dir, "ledger.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another ledger process (ledger serve or rebuild) is using the read models in %s; stop it first", c.Dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"perfledger/domain"
	"perfledger/domain/demo"
)

func runDemo(ctx context.Context, env *environment, args []string) error {
	var (
		c       dataConfig
		members int
		months  int
		seed    int64
		workers int
		server  string
		token   string
	)
	fs := newFlags(env, "demo", `demo [--members N] [--months N] [--seed S] [--data DIR | --server URL --token ADMIN_TOKEN]

Generates a realistic organisation (teams in regions, members on the ladder,
months of activities, sales, quality ratings, targets, evaluations, promotions,
rewards, suggestions) through the command service into an empty ledger.
The same seed always gives the same ledger. With --server, the commands go
to a running ledger serve over its HTTP API instead: the server's own
policies issue eligibility, goal bonuses and clawbacks, promotions whose
simulated effective date precedes the server's approval date are counted,
not effected, and a re-run appends nothing.`)
	addDataFlags(fs, env, &c)
	addStoreFlag(fs, env, &c)
	fs.IntVar(&members, "members", 50, "number of members (at least 6)")
	fs.IntVar(&months, "months", 6, "months of history, ending before the current month")
	fs.Int64Var(&seed, "seed", 1, "random seed")
	fs.IntVar(&workers, "workers", 64, "concurrent writers (appends share commits)")
	fs.StringVar(&server, "server", "", "send the commands to a running ledger serve at this URL instead of the data folder")
	fs.StringVar(&token, "token", env.getenv("LEDGER_TOKEN"), "admin token of the server, with --server (env LEDGER_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if workers < 1 || workers > 1024 {
		return usageErr("--workers must be between 1 and 1024")
	}
	start := time.Now()
	cfg := demo.Config{Members: members, Months: months, Seed: seed, Start: demo.DefaultStart(start, months)}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if server != "" {
		return runRemoteDemo(ctx, env, cfg, workers, server, token, start)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if c.Store == "" || c.Store == "sqlite" {
		if st, err := os.Stat(c.eventsPath()); err == nil && st.Size() > 0 {
			if has, _ := hasEvents(ctx, c); has {
				return fmt.Errorf("%s already holds a ledger; the demo needs an empty one (use --data with a new folder)", c.Dir)
			}
		}
	}
	store, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()
	keys, err := openKeys(ctx, c)
	if err != nil {
		return err
	}
	defer keys.Close()

	clock := &demo.Clock{}
	svc := domain.NewService(store, keys, clock.Now)
	var (
		last   domain.Position
		lastMu sync.Mutex
	)
	exec := func(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error {
		res, err := svc.Execute(ctx, cmd, meta)
		if err != nil {
			return fmt.Errorf("%T: %w", cmd, err)
		}
		lastMu.Lock()
		if last.Less(res.Position) {
			last = res.Position
		}
		lastMu.Unlock()
		return nil
	}
	stats, err := demo.Run(ctx, cfg, workers, clock, exec)
	if err != nil {
		return fmt.Errorf("after %d commands: %w", stats.Commands, err)
	}
	took := time.Since(start)
	fmt.Fprintf(env.stdout, "demo: %d members, %d months (from %s), seed %d: %d commands in %s (%.0f/s); log ends at position %s in %s\n",
		members, months, cfg.Start.Format("2006-01"), seed, stats.Commands, took.Round(time.Millisecond),
		float64(stats.Commands)/took.Seconds(), last, c.Dir)
	fmt.Fprintf(env.stdout, "next: ledger events --data %s --limit 20   or   ledger serve --data %s\n", c.Dir, c.Dir)
	return nil
}

// hasEvents reports whether the configured store holds any event.
func hasEvents(ctx context.Context, c dataConfig) (bool, error) {
	store, err := openStore(ctx, c)
	if err != nil {
		return false, err
	}
	defer store.Close()
	for _, err := range store.ReadAll(ctx, domain.Position{}) {
		return err == nil, err
	}
	return false, nil
}

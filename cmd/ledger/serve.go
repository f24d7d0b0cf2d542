package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"perfledger/adapters/bus"
	"perfledger/adapters/httpapi"
	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
)

// serveConfig is what `ledger serve` runs with.
type serveConfig struct {
	data         dataConfig
	addr         string
	rateLimit    float64
	shutdownWait time.Duration
	asOf         asOfConfig
	memoryLimit  byteSize
	procs        int
	pprofAddr    string
}

func (c serveConfig) Validate() error {
	if err := c.data.Validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return usageErr("--addr %q: want host:port or :port", c.addr)
	}
	if c.pprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.pprofAddr); err != nil {
			return usageErr("--pprof %q: want host:port", c.pprofAddr)
		}
	}
	if c.shutdownWait <= 0 {
		return usageErr("--shutdown-timeout must be positive")
	}
	if c.procs < 0 {
		return usageErr("--procs must be 0 (8 per CPU) or more")
	}
	if c.asOf.cache < 1 || c.asOf.snapshotEvery < 1 || c.asOf.snapshots < 1 || c.asOf.snapshotMiB < 1 {
		return usageErr("--asof-cache, --asof-snapshot-every, --asof-snapshots and --asof-snapshot-mib must be at least 1")
	}
	if _, err := parseWarm(c.asOf.warm); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

func runServe(ctx context.Context, env *environment, args []string) error {
	var c serveConfig
	fs := newFlags(env, "serve", `serve [--addr :8080] [--data DIR] [--store URL]

Runs the ledger in one process: the event store (embedded SQLite by default, or
EventStoreDB with --store esdb://…), the projections and the HTTP API. On the
first start it creates an admin token and writes it, readable only by you, to
DIR/admin.token. SIGINT or SIGTERM stop it gracefully: requests in flight
finish and the projections checkpoint.`)
	addDataFlags(fs, env, &c.data)
	addStoreFlag(fs, env, &c.data)
	addr := env.getenv("LEDGER_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	fs.StringVar(&c.addr, "addr", addr, "listen address (env LEDGER_ADDR)")
	fs.Float64Var(&c.rateLimit, "rate-limit", 2000, "requests per second allowed per token (negative: no limit)")
	fs.DurationVar(&c.shutdownWait, "shutdown-timeout", 15*time.Second, "how long a graceful stop waits for requests in flight")
	fs.StringVar(&c.pprofAddr, "pprof", "", "serve Go profiles (net/http/pprof, no authentication) on this address, e.g. 127.0.0.1:6060; off when empty")
	c.memoryLimit = defaultMemoryLimit
	fs.Var(&c.memoryLimit, "memory-limit", "soft limit of the Go heap (e.g. 256MiB; off: none; GOMEMLIMIT is used when set and this flag is not)")
	fs.IntVar(&c.procs, "procs", 0, "Go scheduler threads (GOMAXPROCS; 0: 8 per CPU, at most 64; GOMAXPROCS is used when set and this flag is not)")
	fs.IntVar(&c.asOf.cache, "asof-cache", projections.DefaultAsOfCache, "as_of queries: read-model databases kept for recent times")
	fs.IntVar(&c.asOf.snapshotEvery, "asof-snapshot-every", projections.DefaultSnapshotEvery, "as_of queries: events between snapshots (smaller: faster, more disk)")
	fs.IntVar(&c.asOf.snapshots, "asof-snapshots", projections.DefaultMaxSnapshots, "as_of queries: snapshots kept of each kind of query, spread over the log (each is a copy of the read models it needs, kept in DATA/asof across restarts)")
	fs.StringVar(&c.asOf.warm, "asof-warm", defaultWarm, "as_of queries: periods whose boards (every metric) are snapshotted ahead in the background, once the server has been quiet for 10 s (no event appended, read models and policies caught up) and again each time the log has grown by --asof-snapshot-every, so that even their first as_of request replays only a short tail: comma-separated periods (2026, 2026-Q4, 2026-11, 2026-W47) or "+warmThisYear+", "+warmQuarter+", "+warmMonth+", "+warmWeek+" (the current one), "+warmLastYear+"; none: no warm-up (README, \"as_of\")")
	fs.Int64Var(&c.asOf.snapshotMiB, "asof-snapshot-mib", projections.DefaultMaxSnapshotBytes>>20, "as_of queries: disk the snapshots may take in all, in MiB (past it, those of the queries asked least recently go)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if limit := applyMemoryLimit(given["memory-limit"], c.memoryLimit, env.getenv("GOMEMLIMIT"), defaultMemoryLimit); limit > 0 {
		logger.Info("memory limit of the Go heap", "bytes", limit)
	}
	procs := applyProcs(given["procs"] && c.procs > 0, c.procs, env.getenv("GOMAXPROCS"), runtime.NumCPU())
	logger.Info("Go scheduler threads", "procs", procs, "cpus", runtime.NumCPU())
	unlock, err := lockData(c.data) // the read models are this process's alone
	if err != nil {
		return err
	}
	defer unlock()
	a, err := openApp(ctx, c.data, logger)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.ensureAdminToken(ctx, env); err != nil {
		return err
	}
	return a.serve(ctx, c, logger)
}

// The API's pool on the read models: enough connections for two cores, and
// a page cache per connection and database (views.db, and each attached one,
// see separateViews) that holds the hot pages of the boards (small: see
// sqlite.DerivedCacheMiB). 1 MiB each: with 2 for each of the two
// databases, SQLite held 50-62 MiB under a POST load instead of 29-37.
const (
	viewReaders        = 8
	viewReaderCacheMiB = 1
)

// app is the wired ledger: store, service, projections, bus and API tables.
type app struct {
	data    dataConfig
	store   closingStore
	keys    *sqlite.KeyStore
	views   *viewsDBs // read models: written by the runner, read by the API
	apiDB   *sql.DB
	service *domain.Service
	runner  *projections.Runner
	tokens  *httpapi.Tokens
	head    *headTracker
	logger  *slog.Logger
}

// openApp opens every part and catches the projections up with the log.
func openApp(ctx context.Context, dc dataConfig, logger *slog.Logger) (a *app, err error) {
	a = &app{data: dc, logger: logger}
	defer func() {
		if err != nil {
			a.Close()
			a = nil
		}
	}()
	if a.store, err = openStore(ctx, dc); err != nil {
		return a, err
	}
	if a.keys, err = openKeys(ctx, dc); err != nil {
		return a, err
	}
	// A first start (a new, imported or generated ledger) builds its read
	// models the way `ledger rebuild` does, in new files without a journal.
	fresh, err := noViews(dc)
	if err != nil {
		return a, err
	}
	if fresh {
		start := time.Now()
		if err := rebuildViews(ctx, dc, a.store, logger); err != nil {
			return a, fmt.Errorf("build read models: %w", err)
		}
		logger.Info("read models built from the log", "took", time.Since(start).Round(time.Millisecond))
	}
	// The API reads the read models through a pool of its own, bounded so
	// that many requests at once cannot each grow a page cache.
	if a.views, err = openViews(ctx, dc, viewReaders, viewReaderCacheMiB); err != nil {
		return a, err
	}
	if a.apiDB, a.tokens, err = openTokens(ctx, dc); err != nil {
		return a, err
	}
	a.service = domain.NewService(a.store, a.keys, domain.SystemClock)
	cfg := a.views.runnerConfig()
	cfg.Logger = logger
	a.runner, err = projections.NewRunner(ctx, cfg)
	if err != nil {
		return a, fmt.Errorf("open read models: %w", err)
	}
	if _, err := a.runner.DropRetired(ctx); err != nil { // it logs what it drops
		return a, err
	}
	if reset := a.runner.Reset(); len(reset) > 0 {
		logger.Info("read models rebuilt because their version changed", "projections", reset)
	}
	start := time.Now()
	if err := a.runner.CatchUp(ctx, a.store); err != nil {
		return a, fmt.Errorf("catch up read models: %w", err)
	}
	logger.Info("read models caught up", "took", time.Since(start).Round(time.Millisecond))
	// A long catch-up leaves a large heap behind: hand it back before serving.
	debug.FreeOSMemory()
	a.head = newHeadTracker(a.runner)
	return a, nil
}

// progress is the figure the as-of warm-up watches to know the server is
// at rest: the head of the log plus the checkpoint of every read model and
// policy. It grows while events are appended and while any of them catches
// up (on a fresh data folder the policies go through the whole log once the
// read models have), and stays still once all of them have nothing to do,
// or are stuck.
func (a *app) progress(policies []projections.Policy) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		h, err := a.head.Head(ctx)
		if err != nil {
			return 0, err
		}
		sum := h.Commit
		for _, s := range a.runner.Positions() {
			sum += s.Position.Commit
		}
		for _, p := range policies {
			pos, err := a.runner.PolicyCheckpoint(ctx, p.Name())
			if err != nil {
				return 0, err
			}
			sum += pos.Commit
		}
		return sum, nil
	}
}

func (a *app) Close() {
	if a == nil {
		return
	}
	if a.apiDB != nil {
		_ = a.apiDB.Close()
	}
	a.views.Close()
	if a.keys != nil {
		_ = a.keys.Close()
	}
	if a.store != nil {
		_ = a.store.Close()
	}
}

// ensureAdminToken creates the first admin token when there is none, writes
// it to a 0600 file in the data folder and says where.
func (a *app) ensureAdminToken(ctx context.Context, env *environment) error {
	has, err := a.tokens.HasActive(ctx, httpapi.RoleAdmin)
	if err != nil || has {
		return err
	}
	info, secret, err := a.tokens.Create(ctx, httpapi.NewToken{Role: httpapi.RoleAdmin, Label: "created at first start"})
	if err != nil {
		return err
	}
	path := filepath.Join(a.data.Dir, "admin.token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the admin token: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return err
	}
	fmt.Fprintf(env.stderr, "first start: created admin token %s; its secret is in %s (readable only by you)\n", info.TokenID, path)
	return nil
}

// serve runs the bus and the HTTP server until ctx ends, then stops both.
func (a *app) serve(ctx context.Context, c serveConfig, logger *slog.Logger) error {
	policies, err := projections.NewPolicies(a.runner)
	if err != nil {
		return err
	}
	b, err := bus.New(bus.Config{Log: a.store, Runner: a.runner, Policies: policies, Executor: a.service, Logger: logger})
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	busDone := make(chan error, 1)
	go func() { busDone <- b.Run(runCtx) }()
	go a.head.track(runCtx, a.store)

	rate := httpapi.RateLimit{Rate: c.rateLimit, Burst: int(2 * c.rateLimit)}
	if c.rateLimit < 0 {
		rate = httpapi.RateLimit{Rate: -1}
	}
	health := httpapi.RunnerHealth{Runner: a.runner, Head: a.head.Head}
	asOf, err := newAsOf(a.data, c.asOf, a.store, logger)
	if err != nil {
		return err
	}
	defer func() { _ = asOf.Close() }()
	// The index of recorded times is read now, so that the first as_of
	// query does not wait for it (16 bytes an event); then the boards of
	// --asof-warm are built ahead.
	indexDone := make(chan struct{})
	go func() {
		defer close(indexDone)
		if err := asOf.Index(runCtx); err != nil && runCtx.Err() == nil {
			logger.Warn("as-of index of recorded times: the first as_of query will read it", "error", err)
		}
		// Reading the whole log left garbage several times the index's
		// size: give it back now rather than hold it until the heap grows.
		debug.FreeOSMemory()
		periods, _ := parseWarm(c.asOf.warm) // checked by Validate
		warmAsOf(runCtx, asOf, periods, warmQuiet, a.progress(policies), time.Now, logger)
	}()
	defer func() { stopRun(); <-indexDone }()
	api, err := httpapi.New(httpapi.Config{
		Commands: a.service, Org: httpapi.NewStoreOrg(a.store), ReadModels: a.runner, Keys: a.keys,
		Log: a.store, DB: a.apiDB, Tokens: a.tokens, Ready: health, Lags: health,
		Logger: logger, RateLimit: rate, AsOf: asOf,
	})
	if err != nil {
		return err
	}
	if c.pprofAddr != "" {
		stop, err := serveProfiles(c.pprofAddr, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	srv := httpapi.NewHTTPServer(c.addr, api)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.addr, err)
	}
	logger.Info("ledger serving", "addr", ln.Addr().String(), "data", a.data.Dir, "store", storeName(a.data))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	select {
	case err = <-srvDone:
	case err = <-busDone:
		err = fmt.Errorf("projections stopped: %w", err)
	case <-ctx.Done():
	}
	logger.Info("stopping: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownWait)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if cerr := b.Close(); cerr != nil && err == nil {
		err = cerr
	}
	stopRun()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	logger.Info("stopped")
	return err
}

func storeName(c dataConfig) string {
	if c.Store == "" || c.Store == "sqlite" {
		return "embedded (" + c.eventsPath() + ")"
	}
	return redactURL(c.Store)
}

// headTracker follows the head of the log for readiness and lag.
type headTracker struct {
	mu   sync.Mutex
	head domain.Position
}

func newHeadTracker(r *projections.Runner) *headTracker {
	h := &headTracker{}
	for _, s := range r.Positions() {
		if h.head.Less(s.Position) {
			h.head = s.Position
		}
	}
	return h
}

// track subscribes to the log from the known head and records every new
// position until ctx ends, resubscribing after an error.
func (h *headTracker) track(ctx context.Context, log domain.EventStore) {
	for ctx.Err() == nil {
		h.mu.Lock()
		from := h.head
		h.mu.Unlock()
		for e, err := range log.Subscribe(ctx, from) {
			if err != nil {
				break
			}
			h.mu.Lock()
			h.head = e.Position
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Head returns the last position seen.
func (h *headTracker) Head(context.Context) (domain.Position, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head, nil
}

// serveProfiles serves the Go runtime's profiles on their own listener
// (never on the API's: they are unauthenticated) until stop is called.
func serveProfiles(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Warn("serving Go profiles without authentication", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

package bus_test

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"perfledger/adapters/bus"
	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
)

var (
	benchEvents   = flag.Int("bench.events", 1_000_000, "events in the log of BenchmarkRebuild")
	benchOnly     = flag.String("bench.projections", "", "comma-separated projections BenchmarkLiveLag runs (default: all)")
	benchMaxBatch = flag.Int("bench.max-batch", 0, "bus.Config.MaxBatch of BenchmarkLiveLag (0: the default)")
	benchDir      = flag.String("bench.dir", filepath.Join(os.TempDir(), "perfledger-bench"),
		"where generated benchmark logs are kept between runs")
)

// benchFactories are the projections the benchmarks run: every read model
// and the policy facts.
func benchFactories() []projections.Factory {
	return append(projections.All(), projections.PolicyFacts)
}

// benchLog returns a SQLite event store holding at least n events made by
// domain commands through the domain service (an organisation of teams and
// members, then months of activities, sales, targets, ratings and
// finalized evaluations). It is generated once per size and kept in
// -bench.dir.
func benchLog(b *testing.B, n int) *sqlite.Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(*benchDir, fmt.Sprintf("events-%d.db", n))
	done := path + ".complete"
	if _, err := os.Stat(done); err != nil {
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(f)
		}
		start := time.Now()
		st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Durability: sqlite.Relaxed})
		if err != nil {
			b.Fatal(err)
		}
		if err := generate(ctx, st, n); err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(done, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d events in %s into %s", n, time.Since(start).Round(time.Second), path)
	}
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Durability: sqlite.Relaxed})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// generate appends at least n events through the domain service.
func generate(ctx context.Context, st domain.EventStore, n int) error {
	end := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	svc := domain.NewService(st, domain.NewMemKeys(), func() time.Time { return end }, domain.WithCacheSize(50_000))
	var count atomic.Int64
	var seq atomic.Int64
	exec := func(cmd domain.Command) error {
		res, err := svc.Execute(ctx, cmd, domain.CommandMeta{
			CommandID: "bench-" + strconv.FormatInt(seq.Add(1), 10), Actor: "bench"})
		if err != nil {
			return fmt.Errorf("%s: %w", cmd.CommandName(), err)
		}
		count.Add(int64(len(res.Events)))
		return nil
	}
	perTeam, members := 20, max(n/500, 40)
	if n < 20_000 {
		perTeam, members = 6, 12 // small logs for tests
	}
	teams := members / perTeam
	for t := range teams {
		if err := exec(domain.FormTeam{TeamID: fmt.Sprintf("t%d", t), Name: fmt.Sprintf("Team %d", t),
			Department: domain.DepartmentSales, Region: fmt.Sprintf("r%d", t%4)}); err != nil {
			return err
		}
		if err := exec(domain.JoinMember{MemberID: fmt.Sprintf("t%d-lead", t), DisplayName: "Lead", Role: "sales_supervisor",
			TeamID: fmt.Sprintf("t%d", t), JoinedOn: "2024-01-08"}); err != nil {
			return err
		}
	}
	months := 12
	if n < 20_000 {
		months = 3 // small logs for tests: fewer, fuller months
	}
	first := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
	perMemberMonth := max(n/(teams*(perTeam-1)*months), 4)
	var wg sync.WaitGroup
	errs := make(chan error, teams)
	for t := range teams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(t), 7))
			lead := fmt.Sprintf("t%d-lead", t)
			var ms []string
			for i := 1; i < perTeam; i++ {
				id := fmt.Sprintf("t%d-m%d", t, i)
				ms = append(ms, id)
				if err := exec(domain.JoinMember{MemberID: id, DisplayName: "Member " + id, Role: "salesperson",
					TeamID: fmt.Sprintf("t%d", t), JoinedOn: "2025-01-06"}); err != nil {
					errs <- err
					return
				}
			}
			for mo := range months {
				start := first.AddDate(0, mo, 0)
				period := domain.PeriodOf(domain.PeriodMonth, start).String()
				for _, id := range ms {
					if err := exec(domain.SetTarget{TargetID: id + "-" + period, SubjectKind: domain.SubjectMember, SubjectID: id,
						KPI: "revenue", Period: period, Value: domain.Fixed(80_000 * domain.FixedScale)}); err != nil {
						errs <- err
						return
					}
				}
				for k := range perMemberMonth {
					for _, id := range ms {
						at := start.Add(time.Duration(r.Int64N(int64(27 * 24 * time.Hour)))).Truncate(time.Second)
						var cmd domain.Command
						if k%6 == 5 {
							cmd = domain.CloseSale{SaleID: fmt.Sprintf("%s-s%d-%d", id, mo, k), MemberID: id, Customer: "c",
								AmountMinor: 100_000 + r.Int64N(2_000_000), Currency: "EUR", OccurredAt: at}
						} else {
							kinds := []string{domain.ActivityVisit, domain.ActivityCall, domain.ActivityQuote, domain.ActivityDemo}
							cmd = domain.LogActivity{ActivityID: fmt.Sprintf("%s-a%d-%d", id, mo, k), MemberID: id,
								Kind: kinds[r.IntN(len(kinds))], Quantity: 1 + r.Int64N(5), OccurredAt: at}
						}
						if err := exec(cmd); err != nil {
							errs <- err
							return
						}
					}
				}
				for _, id := range ms {
					score := domain.Fixed(90*domain.FixedScale + r.Int64N(30*domain.FixedScale))
					if err := exec(domain.RecordManagerRating{MemberID: id, Month: period, Rating: 1 + r.IntN(5), RaterID: lead}); err != nil {
						errs <- err
						return
					}
					if err := exec(domain.FinalizeEvaluation{MemberID: id, Month: period,
						Components: domain.EvaluationComponents{Objective: &score}, Score: score, Band: 3, RulesVersion: 1,
						InputsDigest: "bench", FinalizedBy: lead}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if got := count.Load(); got < int64(n) {
		return fmt.Errorf("generated %d events, fewer than %d", got, n)
	}
	return nil
}

// resetPeakRSS resets the kernel's peak resident set of this process
// (VmHWM); peakRSS reads it in bytes. Both return false where unsupported.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0o200) == nil
}

func peakRSS() (float64, bool) { return procStatus("VmHWM:") }

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) (float64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}

// anonSampler tracks the peak anonymous resident memory (RssAnon: heap and
// stacks, without the file pages of the memory-mapped event store, which
// VmHWM counts) by sampling every 20 ms until stopped.
func anonSampler() (stop func() float64) {
	var peak float64
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := procStatus("RssAnon:"); ok && v > peak {
				peak = v
			}
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(quit)
		<-done
		return peak
	}
}

func countEvents(b *testing.B, st domain.EventStore) (int, domain.Position) {
	b.Helper()
	n, last := 0, domain.Position{}
	for e, err := range st.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			b.Fatal(err)
		}
		n++
		last = e.Position
	}
	return n, last
}

// BenchmarkRebuild rebuilds projections from the whole log (the direct
// replay path of projections.Runner.Rebuild: ReadAll in batches, each event
// decoded once, one read-model transaction per batch for all projections):
// "all" rebuilds every projection together, the other sub-benchmarks one
// projection alone ("floor" runs a projection that writes nothing: the
// runner's own cost). It reports events/s and the peak resident memory of
// the rebuild: peak-RSS-MB (VmHWM, reset before it starts; it counts the
// file pages of the event store, which reads through a memory map, and the
// log generation when that ran in the same process: run twice) and
// peak-anon-MB (heap and stacks only, sampled every 20 ms).
func BenchmarkRebuild(b *testing.B) {
	n := *benchEvents
	if testing.Short() {
		n = 20_000
	}
	st := benchLog(b, n)
	total, _ := countEvents(b, st)
	run := func(b *testing.B, fs []projections.Factory) {
		ctx := context.Background()
		r, err := projections.NewRunner(ctx, runnerConfig(b, b.TempDir(), fs))
		if err != nil {
			b.Fatal(err)
		}
		rssOK := resetPeakRSS()
		stopAnon := anonSampler()
		b.ResetTimer()
		for b.Loop() {
			if err := r.Rebuild(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if anon := stopAnon(); anon > 0 {
			b.ReportMetric(anon/(1<<20), "peak-anon-MB")
		}
		b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		if peak, ok := peakRSS(); ok && rssOK {
			b.ReportMetric(peak/(1<<20), "peak-RSS-MB")
		}
	}
	b.Run("all", func(b *testing.B) { run(b, benchFactories()) })
	// The runner's own cost: read, decode once, checkpoint; no read model.
	b.Run("floor", func(b *testing.B) {
		run(b, []projections.Factory{func(string) projections.Projector { return noop{} }})
	})
	for _, f := range benchFactories() {
		b.Run(f("").Name(), func(b *testing.B) { run(b, []projections.Factory{f}) })
	}
}

// BenchmarkLiveLag runs the bus (every projection on its own Watermill
// subscription) while 64 writers append through the domain service as fast
// as they can, for -benchtime worth of appends, and reports how far behind
// the head the projections were: the delay from an append's return to the
// moment every projection had applied it (p50, p99, max), and the
// throughput of appends.
func BenchmarkLiveLag(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db"), Durability: sqlite.Durable})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	svc := domain.NewService(st, domain.NewMemKeys(), func() time.Time { return now })
	do := func(cmd domain.Command) (domain.Result, error) {
		return svc.Execute(ctx, cmd, domain.CommandMeta{CommandID: domain.NewID(), Actor: "bench"})
	}
	const writers = 64
	if _, err := do(domain.FormTeam{TeamID: "t", Name: "T", Department: domain.DepartmentSales, Region: "r"}); err != nil {
		b.Fatal(err)
	}
	for w := range writers {
		if _, err := do(domain.JoinMember{MemberID: fmt.Sprintf("m%d", w), DisplayName: "M", Role: "salesperson",
			TeamID: "t", JoinedOn: "2025-01-06"}); err != nil {
			b.Fatal(err)
		}
	}
	fs := benchFactories()
	if *benchOnly != "" {
		fs = slices.DeleteFunc(fs, func(f projections.Factory) bool {
			return !slices.Contains(strings.Split(*benchOnly, ","), f("").Name())
		})
	}
	r, err := projections.NewRunner(ctx, runnerConfig(b, b.TempDir(), fs))
	if err != nil {
		b.Fatal(err)
	}
	bs, err := bus.New(bus.Config{Log: st, Runner: r, MaxBatch: *benchMaxBatch, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- bs.Run(ctx) }()
	<-bs.Running()

	var (
		mu     sync.Mutex
		delays []time.Duration
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	// A sampler measures, for one append in 64, when the projections reach it.
	samples := make(chan struct {
		pos domain.Position
		at  time.Time
	}, 1<<16)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for s := range samples {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := r.WaitFor(wctx, s.pos)
			cancel()
			if err != nil {
				failed.Store(&err)
				continue
			}
			mu.Lock()
			delays = append(delays, time.Since(s.at))
			mu.Unlock()
		}
	}()
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("m%d", w)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				res, err := do(domain.LogActivity{ActivityID: fmt.Sprintf("a%d", i), MemberID: id,
					Kind: domain.ActivityCall, Quantity: 1, OccurredAt: now.Add(-time.Duration(i) * time.Second)})
				if err != nil {
					failed.Store(&err)
					return
				}
				if i%64 == 0 {
					samples <- struct {
						pos domain.Position
						at  time.Time
					}{res.Position, time.Now()}
				}
			}
		}()
	}
	wg.Wait()
	appendTime := b.Elapsed()
	close(samples)
	<-sampled
	b.StopTimer()
	if err := bs.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	b.ReportMetric(float64(b.N)/appendTime.Seconds(), "appends/s")
	if len(delays) > 0 {
		slices.Sort(delays)
		q := func(f float64) float64 {
			return float64(delays[int(f*float64(len(delays)-1))]) / float64(time.Millisecond)
		}
		b.ReportMetric(q(0.5), "lag-p50-ms")
		b.ReportMetric(q(0.99), "lag-p99-ms")
		b.ReportMetric(q(1), "lag-max-ms")
	}
}

// noop is a projection that applies nothing.
type noop struct{}

func (noop) Name() string                                                 { return "noop" }
func (noop) Version() int                                                 { return 1 }
func (noop) Setup(context.Context, *sql.Tx) error                         { return nil }
func (noop) Apply(context.Context, *sql.Tx, []projections.Envelope) error { return nil }

var (
	benchCache    = flag.Int("bench.cache-mb", sqlite.DerivedCacheMiB, "SQLite page cache of the benchmarks' read-model database, MiB")
	benchSeparate = flag.String("bench.separate", "leaderboard",
		"comma-separated projections the benchmarks keep in a database of their own, as `ledger serve` does (RunnerConfig.Separate; empty: none)")
)

// runnerConfig opens the read-model databases of fs in dir as `ledger
// serve` does: views.db, a database of its own for each projection of fs
// that -bench.separate names, and a read pool that attaches them all.
func runnerConfig(tb testing.TB, dir string, fs []projections.Factory) projections.RunnerConfig {
	tb.Helper()
	apart := map[string]string{}
	for _, f := range fs {
		if name := f("").Name(); slices.Contains(strings.Split(*benchSeparate, ","), name) {
			apart[name] = filepath.Join(dir, "views-"+name+".db")
		}
	}
	cfg := viewsConfig(tb, openViews, filepath.Join(dir, "views.db"), apart, 8, 2)
	cfg.Projections, cfg.Logger = fs, slog.New(slog.DiscardHandler)
	return cfg
}

// viewsConfig opens, with open, the read-model database at path and a
// database of its own for each projection of apart (name: path), and then
// (when apart names any) a read pool of conns connections, cacheMiB of
// page cache per database each, that attaches them all.
func viewsConfig(tb testing.TB, open func(testing.TB, string) *sql.DB, path string, apart map[string]string,
	conns, cacheMiB int) projections.RunnerConfig {
	tb.Helper()
	cfg := projections.RunnerConfig{DB: open(tb, path)}
	if len(apart) == 0 {
		return cfg
	}
	if err := cfg.DB.Ping(); err != nil { // creates the file the readers open
		tb.Fatal(err)
	}
	cfg.Separate = map[string]*sql.DB{}
	var paths []string
	for _, name := range slices.Sorted(maps.Keys(apart)) {
		cfg.Separate[name] = open(tb, apart[name])
		if err := cfg.Separate[name].Ping(); err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, apart[name])
	}
	read, err := sqlite.OpenReader(context.Background(), path, conns, cacheMiB, paths...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { read.Close() })
	cfg.ReadDB = read
	return cfg
}

// openViews opens a read-model database as `ledger serve` does
// (sqlite.OpenDerivedDB): WAL checkpointed every DerivedCheckpointPages,
// relaxed sync (the read models can always be rebuilt), temporary data in
// memory; -bench.cache-mb sets the page cache (by default the server's,
// sqlite.DerivedCacheMiB).
func openViews(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)"+
		"&_pragma=synchronous(normal)&_pragma=temp_store(memory)&_pragma=cache_size(-"+strconv.Itoa(*benchCache*1024)+")"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(sqlite.DerivedCheckpointPages)+")")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

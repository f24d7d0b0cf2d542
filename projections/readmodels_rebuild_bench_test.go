package projections_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"perfledger/adapters/memory"
	"perfledger/domain"
	"perfledger/domain/demo"
	"perfledger/projections"
)

var (
	demoMembers    = flag.Int("demo.members", 100, "members of the demo log of BenchmarkRebuildAll")
	demoMonths     = flag.Int("demo.months", 3, "months of the demo log of BenchmarkRebuildAll")
	demoCache      = flag.String("demo.cache", os.TempDir(), "folder where BenchmarkRebuildAll caches its demo logs (JSON lines)")
	demoOnly       = flag.Bool("demo.only", false, "BenchmarkRebuildAll only generates (and caches) its demo log")
	demoEvents     = flag.Int("demo.events", 0, "BenchmarkRebuildAll replays only the first that many events of its demo log (0: all)")
	rebuildDump    = flag.String("rebuild.dump", "", "BenchmarkRebuildAll writes every table of the rebuilt database, sorted, to this file")
	rebuildPragmas = flag.String("rebuild.pragmas", "busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-4096)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(8192)",
		"pragmas of the read-model database of BenchmarkRebuildAll (the _pragma values of its DSN, joined by &_pragma=; by default those of sqlite.OpenDerivedDB, the server's: its 4 MiB cache, sqlite.DerivedCacheMiB, and its checkpoint every 8,192 pages, sqlite.DerivedCheckpointPages)")
	rebuildOnly  = flag.String("rebuild.only", "", "comma-separated read models BenchmarkRebuildAll rebuilds (empty: all)")
	rebuildBatch = flag.Int("rebuild.batch", 0, "events per transaction in BenchmarkRebuildAll (0: the runner's default)")
	rebuildApart = flag.String("rebuild.separate", "leaderboard", "comma-separated read models BenchmarkRebuildAll keeps in a database of their own, as `ledger` does (RunnerConfig.Separate; empty: none)")
)

// demoLogFile returns a JSON-lines file holding the log of `ledger demo`
// with that many members and months (seed 1), generating it through the
// command service over the memory store the first time.
func demoLogFile(tb testing.TB, members, months int) string {
	tb.Helper()
	path := filepath.Join(*demoCache, fmt.Sprintf("perfledger-demo-%dx%d-seed1.jsonl", members, months))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	ctx := context.Background()
	store := runDemo(tb, members, months)
	defer store.Close()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	for e, err := range store.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		if err := enc.Encode(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := errors.Join(w.Flush(), f.Close(), os.Rename(tmp, path)); err != nil {
		tb.Fatal(err)
	}
	return path
}

// runDemo runs `ledger demo` with that many members and months (seed 1,
// from 2025-01-01) through the command service over a memory store, then
// the commands more, as the admin.
func runDemo(tb testing.TB, members, months int, more ...domain.Command) *memory.Store {
	tb.Helper()
	store := memory.New(nil)
	clock := &demo.Clock{}
	svc := domain.NewService(store, domain.NewMemKeys(), clock.Now)
	cfg := demo.Config{Members: members, Months: months, Seed: 1, Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	exec := func(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error {
		_, err := svc.Execute(ctx, cmd, meta)
		return err
	}
	if _, err := demo.Run(context.Background(), cfg, 4, clock, exec); err != nil {
		store.Close()
		tb.Fatal(err)
	}
	for i, cmd := range more {
		id := fmt.Sprintf("after-demo-%d", i)
		if err := exec(context.Background(), cmd, domain.CommandMeta{CommandID: id, Actor: "admin", CorrelationID: id}); err != nil {
			store.Close()
			tb.Fatalf("%T after the demo: %v", cmd, err)
		}
	}
	return store
}

// fileLog streams a JSON-lines log, so that the log itself takes no memory
// while the projections rebuild.
type fileLog struct {
	path  string
	limit int // events read at most; 0: all
}

func (l fileLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		f, err := os.Open(l.path)
		if err != nil {
			yield(domain.Event{}, err)
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for n := 0; sc.Scan() && (l.limit == 0 || n < l.limit); n++ {
			var e domain.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				yield(domain.Event{}, err)
				return
			}
			if !after.Less(e.Position) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(domain.Event{}, err)
		}
	}
}

func countLines(tb testing.TB, path string) int {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	n := 0
	for sc.Scan() {
		n++
	}
	return n
}

// vmHWM reads the peak resident set size of the process in bytes (Linux).
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// resetHWM resets the peak resident set size (Linux: clear_refs 5) after
// returning freed memory, so that vmHWM measures what follows.
func resetHWM() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// BenchmarkRebuildAll rebuilds every read model (projections.All()) from a
// `ledger demo` log through the runner's direct replay path (CatchUp), into a
// SQLite file database in WAL mode, reporting events/s and the peak resident
// set size while rebuilding. The log is streamed from a cached JSON-lines
// file (generated on first use; see -demo.members, -demo.months).
func BenchmarkRebuildAll(b *testing.B) {
	path := demoLogFile(b, *demoMembers, *demoMonths)
	if *demoOnly {
		b.Skip("demo log cached in", path)
	}
	n := countLines(b, path)
	if *demoEvents > 0 {
		n = min(n, *demoEvents)
	}
	ctx := context.Background()
	var peak int64
	for b.Loop() {
		b.StopTimer()
		var apart []string
		if *rebuildApart != "" {
			apart = strings.Split(*rebuildApart, ",")
		}
		d := openSeparateIn(b, b.TempDir(), *rebuildPragmas, apart...)
		cfg := projections.RunnerConfig{DB: d.main, ReadDB: d.read, Separate: d.separate, Projections: rebuildSet(b),
			BatchSize: *rebuildBatch}
		r, err := projections.NewRunner(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		resetHWM()
		b.StartTimer()
		if err := r.CatchUp(ctx, fileLog{path: path, limit: *demoEvents}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak = max(peak, vmHWM())
		if *rebuildDump != "" {
			dumpTables(b, d.tables(b), *rebuildDump)
		}
		d.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(n), "events")
}

// rebuildSet returns the factories named by -rebuild.only (all when empty).
func rebuildSet(tb testing.TB) []projections.Factory {
	if *rebuildOnly == "" {
		return projections.All()
	}
	var out []projections.Factory
	for _, f := range projections.All() {
		if slices.Contains(strings.Split(*rebuildOnly, ","), f("").Name()) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("-rebuild.only %q names no read model", *rebuildOnly)
	}
	return out
}

// dumpTables writes every row of tables (projectionstest.Tables), one line
// each, sorted, so that two builds of the read models can be compared with
// diff.
func dumpTables(tb testing.TB, tables map[string][]string, path string) {
	tb.Helper()
	var lines []string
	for table, rows := range tables {
		for _, r := range rows {
			lines = append(lines, table+"\t"+r)
		}
	}
	slices.Sort(lines)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
}

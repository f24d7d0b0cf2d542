package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"perfledger/projections"
)

var (
	asOfBenchData   = flag.String("asof.data", "", "BenchmarkAsOfBoard: the data folder of a ledger to read (its event store is opened, not changed); empty skips the benchmark")
	asOfBenchAt     = flag.String("asof.at", "2026-09-01T00:00:00Z", "BenchmarkAsOfBoard: the as_of time (RFC 3339)")
	asOfBenchMetric = flag.String("asof.metric", projections.MetricActivityPoints, "BenchmarkAsOfBoard: the board's metric")
	asOfBenchPeriod = flag.String("asof.period", "2026", "BenchmarkAsOfBoard: the board's period")
	asOfBenchSnaps  = flag.Int("asof.snapshots", projections.DefaultMaxSnapshots, "BenchmarkAsOfBoard: snapshots kept (as serve's --asof-snapshots)")
)

// BenchmarkAsOfBoard builds one leaderboard board as of a time, as the
// first as_of request of a fresh server does: each iteration starts a new
// as-of engine (serve's defaults; no cached view, no snapshot yet) over the
// same event store, its index of recorded times read before the timer
// starts. The Go runtime runs as in `ledger serve` (its scheduler threads
// and memory limit, unless GOMAXPROCS or GOMEMLIMIT say otherwise): on the
// two-CPU host of BENCHMARKS.md those made a build about 20 % slower. The ledger is one
// `ledger serve` has written (for instance the demo of BENCHMARKS.md):
//
//	go test ./cmd/ledger -run '^$' -bench AsOfBoard -benchtime 3x -count 6 -args -asof.data DIR
func BenchmarkAsOfBoard(b *testing.B) {
	if *asOfBenchData == "" {
		b.Skip("no ledger to read: -asof.data DIR")
	}
	at, err := time.Parse(time.RFC3339, *asOfBenchAt)
	if err != nil {
		b.Fatalf("-asof.at: %v", err)
	}
	scope, err := projections.LeaderboardBoardScope(*asOfBenchMetric, *asOfBenchPeriod)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	store, err := openStore(ctx, dataConfig{Dir: *asOfBenchData})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	procs, limit := runtime.GOMAXPROCS(0), debug.SetMemoryLimit(-1)
	defer func() {
		runtime.GOMAXPROCS(procs)
		debug.SetMemoryLimit(limit)
	}()
	applyProcs(false, 0, os.Getenv("GOMAXPROCS"), runtime.NumCPU())
	applyMemoryLimit(false, 0, os.Getenv("GOMEMLIMIT"), defaultMemoryLimit)
	var cpu time.Duration // of the process while the timer runs
	for b.Loop() {
		b.StopTimer()
		asOf, err := newAsOf(dataConfig{Dir: b.TempDir()},
			asOfConfig{cache: projections.DefaultAsOfCache, snapshotEvery: projections.DefaultSnapshotEvery, snapshots: *asOfBenchSnaps}, store, logger)
		if err != nil {
			b.Fatal(err)
		}
		if err := asOf.Index(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := cpuTime()
		v, release, err := asOf.AtScope(ctx, at, scope, projections.NewLeaderboard("").Name())
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		b.StopTimer()
		if v.Current(projections.NewLeaderboard("").Name()) == nil {
			b.Fatal("the view has no leaderboard")
		}
		release()
		if err := asOf.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import "runtime"

// procsPerCPU is how many Go scheduler threads (GOMAXPROCS) `ledger serve`
// runs per CPU unless GOMAXPROCS or --procs says otherwise, and maxProcs
// caps that default.
//
// Why more threads than CPUs: the pure-Go SQLite driver guards its page
// caches and its allocator with mutexes shared by every connection of the
// process. Under a flat-out POST load, with one thread per CPU, the event
// store's single writer (which every append waits for) was held up for
// 15–60 ms at a time, either queued behind projection work that had just
// released one of those mutexes or waiting for a holder that the Go
// scheduler had paused. With more threads than CPUs the kernel's scheduler
// shares the CPUs among them by time slices, and the writer runs within a
// few milliseconds of becoming ready. On the two-CPU machine of
// BENCHMARKS.md (sixth session), POST p99 went from 35–40 ms with 2 threads to
// 19–20 ms with 16, and from 9.0–9.2k to 11.6–12.0k requests a second
// (before the read models skipped the event types they do not read, from
// 72–94 ms to 44–57 ms).
const (
	procsPerCPU = 8
	maxProcs    = 64
)

// applyProcs sets GOMAXPROCS: the flag's value when it was given (> 0), else
// the GOMAXPROCS environment variable when set (the runtime has read it
// already), else procsPerCPU per CPU, at most maxProcs. It returns the
// value in force.
func applyProcs(flagSet bool, v int, goMaxProcs string, cpus int) int {
	switch {
	case flagSet:
		runtime.GOMAXPROCS(v)
		return v
	case goMaxProcs != "":
		return runtime.GOMAXPROCS(0)
	}
	n := min(max(cpus, 1)*procsPerCPU, maxProcs)
	runtime.GOMAXPROCS(n)
	return n
}

package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimit is the soft limit `ledger serve` gives the Go runtime
// unless GOMEMLIMIT or --memory-limit says otherwise. With it the collector
// runs before the heap doubles under load, which keeps the resident memory
// of a server holding a million events (Go heap, plus the SQLite page
// caches that live outside it) under 300 MB; see BENCHMARKS.md "HTTP API".
const defaultMemoryLimit = 192 << 20

// byteSize is a flag value holding a size in bytes: a plain number, or one
// with a unit (KiB, MiB, GiB, KB, MB, GB). "0" and "off" mean no limit.
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return "off"
	}
	if *b%(1<<20) == 0 {
		return strconv.FormatInt(int64(*b)>>20, 10) + "MiB"
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "off") {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if len(t) > len(u.suffix) && strings.EqualFold(t[len(t)-len(u.suffix):], u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (examples: 256MiB, 1GiB, 300MB, off)", s)
	}
	return n * mult, nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit: the flag's value
// when it was given, else GOMEMLIMIT when set (the runtime has read it
// already), else def. It returns the limit in force (0: none).
func applyMemoryLimit(flagSet bool, v byteSize, goMemLimit string, def int64) int64 {
	switch {
	case flagSet && v == 0:
		debug.SetMemoryLimit(math.MaxInt64)
		return 0
	case flagSet:
		debug.SetMemoryLimit(int64(v))
		return int64(v)
	case goMemLimit != "":
		cur := debug.SetMemoryLimit(-1)
		if cur == math.MaxInt64 {
			return 0
		}
		return cur
	}
	debug.SetMemoryLimit(def)
	return def
}

// leanShare is the part of the memory limit in force that background work
// (the as-of warm-up) runs under: the collector works harder for it, so that
// building a year's boards ahead adds as little as it can to the server's
// resident memory (BENCHMARKS.md, eleventh session).
const leanShare = 2.0 / 3

// leanMemory readies the process for a round of background work: it hands
// the garbage of earlier work back to the system, so that the round does not
// stack its own heap on top of it, and lowers the Go runtime's soft memory
// limit to leanShare of the one in force (none: unchanged). The returned
// function puts the limit back and hands the round's garbage back in turn.
func leanMemory() (restore func()) {
	debug.FreeOSMemory()
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || limit <= 0 {
		return debug.FreeOSMemory
	}
	debug.SetMemoryLimit(int64(float64(limit) * leanShare))
	return func() {
		debug.SetMemoryLimit(limit)
		debug.FreeOSMemory()
	}
}

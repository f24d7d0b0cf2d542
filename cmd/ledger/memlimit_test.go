package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "off": 0, "OFF": 0, "1024": 1024, "512B": 512, "64KiB": 64 << 10, "160MiB": 160 << 20,
		"1GiB": 1 << 30, "300MB": 300e6, "2gb": 2e9, " 8 MiB ": 8 << 20,
	} {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1", "1.5GiB", "MiB", "99999999999999GiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q): no error", in)
		}
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // restore the test binary's limit
	if got := applyMemoryLimit(false, 0, "", 100<<20); got != 100<<20 || debug.SetMemoryLimit(-1) != 100<<20 {
		t.Fatalf("default: %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
	if got := applyMemoryLimit(true, 200<<20, "", 100<<20); got != 200<<20 || debug.SetMemoryLimit(-1) != 200<<20 {
		t.Fatalf("flag: %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
	if got := applyMemoryLimit(true, 0, "", 100<<20); got != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("off: %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
	// GOMEMLIMIT set and no flag: what the runtime read from it stays.
	debug.SetMemoryLimit(300 << 20)
	if got := applyMemoryLimit(false, 0, "300MiB", 100<<20); got != 300<<20 || debug.SetMemoryLimit(-1) != 300<<20 {
		t.Fatalf("GOMEMLIMIT: %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
}

// TestLeanMemoryLowersTheLimitWhileItRuns: a round of background work runs
// under leanShare of the limit in force, which is put back afterwards; with
// no limit there is nothing to lower.
func TestLeanMemoryLowersTheLimitWhileItRuns(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	debug.SetMemoryLimit(300 << 20)
	restore := leanMemory()
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Errorf("limit during the round: %d MiB; want 200", got>>20)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("limit after the round: %d MiB; want 300", got>>20)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	restore = leanMemory()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit: %d during the round", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("no limit: %d after the round", got)
	}
}

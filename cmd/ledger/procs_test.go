package main

import (
	"runtime"
	"testing"
)

func TestApplyProcs(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	for _, c := range []struct {
		name    string
		flagSet bool
		v       int
		env     string
		cpus    int
		want    int
	}{
		{"default, two CPUs", false, 0, "", 2, 16},
		{"default is capped", false, 0, "", 32, maxProcs},
		{"the flag wins over the environment", true, 3, "5", 2, 3},
	} {
		if got := applyProcs(c.flagSet, c.v, c.env, c.cpus); got != c.want || runtime.GOMAXPROCS(0) != c.want {
			t.Errorf("%s: applyProcs = %d, GOMAXPROCS %d; want %d", c.name, got, runtime.GOMAXPROCS(0), c.want)
		}
	}
	// GOMAXPROCS set in the environment: the runtime's value stays.
	runtime.GOMAXPROCS(5)
	if got := applyProcs(false, 0, "5", 2); got != 5 || runtime.GOMAXPROCS(0) != 5 {
		t.Errorf("with GOMAXPROCS=5: applyProcs = %d, GOMAXPROCS %d; want 5", got, runtime.GOMAXPROCS(0))
	}
}

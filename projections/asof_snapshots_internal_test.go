package projections

import (
	"slices"
	"testing"
)

func TestSnapshotPointsAreSpreadMultiples(t *testing.T) {
	for _, c := range []struct {
		from, prefix, every, most int
		want                      []int
	}{
		{0, 400, 40, 8, []int{80, 160, 240, 320, 400}},
		{0, 320, 40, 8, []int{40, 80, 120, 160, 200, 240, 280, 320}},
		{0, 399, 10, 8, []int{40, 90, 140, 190, 240, 290, 340, 390}},
		{350, 395, 10, 8, []int{360, 370, 380, 390}},
		{0, 960_848, 50_000, 8, []int{50_000, 200_000, 350_000, 500_000, 650_000, 800_000, 950_000}},
		{0, 39, 40, 8, nil},
		{400, 400, 40, 8, nil},
		{0, 400, 40, 1, []int{400}},
	} {
		if got := snapshotPoints(c.from, c.prefix, c.every, c.most); !slices.Equal(got, c.want) {
			t.Errorf("snapshotPoints(%d, %d, %d, %d) = %v, want %v", c.from, c.prefix, c.every, c.most, got, c.want)
		}
	}
}

// TestTrimSnapshotsKeepsThemSpreadWithinBounds: past MaxSnapshots a scope
// loses the snapshots whose neighbours are closest, never its last; past
// MaxSnapshotBytes the scope used least recently loses them first.
func TestTrimSnapshotsKeepsThemSpreadWithinBounds(t *testing.T) {
	released := map[*snapshot]bool{}
	snap := func(models string, n int, used uint64) *snapshot {
		s := &snapshot{n: n, models: models, used: used, bytes: 100}
		s.release = func() { released[s] = true }
		return s
	}
	held := func(a *AsOf, models string) []int {
		var out []int
		for _, s := range a.snaps {
			if s.models == models {
				out = append(out, s.n)
			}
		}
		return out
	}

	a := &AsOf{cfg: AsOfConfig{MaxSnapshots: 4, MaxSnapshotBytes: 1 << 30}}
	// Dense near 100 (a build that ended there), sparse before.
	for _, n := range []int{20, 40, 80, 90, 95, 100} {
		a.snaps = append(a.snaps, snap("s", n, uint64(n)))
	}
	a.trimSnapshots()
	if got, want := held(a, "s"), []int{20, 40, 80, 100}; !slices.Equal(got, want) {
		t.Errorf("scope holds %v, want %v", got, want)
	}
	if len(released) != 2 {
		t.Errorf("%d snapshots released, want the 2 dropped", len(released))
	}

	clear(released)
	a = &AsOf{cfg: AsOfConfig{MaxSnapshots: 8, MaxSnapshotBytes: 450}}
	for _, n := range []int{10, 20, 30} {
		a.snaps = append(a.snaps, snap("old", n, 5), snap("new", n, 9))
	}
	slices.SortStableFunc(a.snaps, func(x, y *snapshot) int { return x.n - y.n })
	a.trimSnapshots()
	if got, want := held(a, "old"), []int{30}; !slices.Equal(got, want) {
		t.Errorf("the scope used least recently holds %v, want %v", got, want)
	}
	if got, want := held(a, "new"), []int{10, 20, 30}; !slices.Equal(got, want) {
		t.Errorf("the scope used last holds %v, want %v", got, want)
	}
	if len(released) != 2 {
		t.Errorf("%d snapshots released, want the 2 dropped", len(released))
	}
}

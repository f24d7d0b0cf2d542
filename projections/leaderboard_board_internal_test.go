package projections

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// boardRowsOf lists what a board's memory holds, row by row.
func boardRowsOf(bc *boardContribs) []string {
	var out []string
	for i := range bc.n {
		c := bc.row(i)
		out = append(out, fmt.Sprintf("%s %s %s %q %s %d %d %v", bc.str(c.member), bc.source(c), bc.weeks[c.week],
			boardMetricNames[c.metric], bc.str(c.team), c.at, c.points, c.voided()))
	}
	return out
}

// TestBoardJournalChunks: a chunk of a board's journal reads back as the
// rows it was written from; a chunk cut anywhere reads back as some of
// those rows or is refused (errBadChunk), never as other rows.
func TestBoardJournalChunks(t *testing.T) {
	bc := newBoardContribs()
	bc.clear()
	at := time.Date(2026, 11, 16, 9, 30, 0, 123, time.UTC)
	for k := range 40 {
		c := pendingContrib{source: fmt.Sprintf("activity:a-%d", k), member: fmt.Sprintf("m%d", k%3), metric: MetricActivityPoints,
			at: at.Add(time.Duration(k) * 7 * time.Hour), amount: int64(k * 3)}
		if k%5 == 0 {
			c.source, c.metric, c.amount = fmt.Sprintf("sale:s-%d", k), MetricRevenue, int64(k)*1_000_000
		}
		c.ti.ID = fmt.Sprintf("t-%d", k%2)
		if added, held := bc.add(c); !added || !held {
			t.Fatalf("contribution %d: added %v, held %v", k, added, held)
		}
	}
	bc.row(7).flags |= contribVoided
	want := boardRowsOf(bc)
	chunk := bc.chunk()
	back := newBoardContribs()
	back.clear()
	if err := back.replay(chunk); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, boardRowsOf(back)); diff != "" {
		t.Fatalf("read back (-written +read):\n%s", diff)
	}
	refused := 0
	for cut := 1; cut < len(chunk); cut++ {
		part := newBoardContribs()
		part.clear()
		err := part.replay(chunk[:cut])
		if errors.Is(err, errBadChunk) {
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		got := boardRowsOf(part)
		if diff := cmp.Diff(want[:len(got)], got); diff != "" {
			t.Fatalf("cut at %d: read back other rows (-written +read):\n%s", cut, diff)
		}
	}
	if refused < len(chunk)-len(want) {
		t.Errorf("%d of %d cuts refused", refused, len(chunk)-1)
	}
}

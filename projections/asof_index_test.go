package projections

import (
	"testing"
	"time"

	"pgregory.net/rapid"

	"perfledger/domain"
)

// TestTimeIndexAgreesWithAList: whatever the recorded times (nearly
// increasing, with stragglers) and positions (Prepare equal to Commit or
// not, across chunk boundaries), the index gives back every position, time
// and type, and the longest prefix recorded by a time, as a plain list does;
// it tells whether an event can have occurred within some times, to the
// second, and never refuses one that did.
func TestTimeIndexAgreesWithAList(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 3*timeChunk+7).Draw(t, "events")
		type entry struct {
			pos domain.Position
			rec int64
			typ string
			occ time.Time
		}
		// "": a log that does not tell the type.
		types := []string{domain.TypeActivityLogged, domain.TypeSaleClosed, domain.TypeMemberJoined, "Custom.v3", ""}
		var list []entry
		var x timeIndex
		rec, commit := int64(1_000), uint64(0)
		differ := rapid.IntRange(-1, n).Draw(t, "first event whose prepare differs (-1: none)")
		for i := range n {
			commit += uint64(rapid.IntRange(1, 3).Draw(t, "gap"))
			rec += int64(rapid.IntRange(0, 5).Draw(t, "step"))
			r := rec
			if rapid.IntRange(0, 20).Draw(t, "straggler") == 0 {
				r -= int64(rapid.IntRange(1, 40).Draw(t, "early by"))
			}
			p := domain.Position{Commit: commit, Prepare: commit}
			if differ >= 0 && i >= differ && i%3 == 0 {
				p.Prepare = commit + 1
			}
			typ := rapid.SampledFrom(types).Draw(t, "type")
			var occ time.Time
			switch rapid.IntRange(0, 9).Draw(t, "occurred") {
			case 0: // unknown
			case 1: // a century before
				occ = time.Unix(0, r).AddDate(-100, 0, 0)
			default: // up to a day around its recording, to the nanosecond
				occ = time.Unix(0, r+rapid.Int64Range(-86_400e9, 86_400e9).Draw(t, "occurred off"))
			}
			list = append(list, entry{p, r, typ, occ})
			x.add(p, r, typ, occ)
		}
		if x.len() != len(list) {
			t.Fatalf("len %d, want %d", x.len(), len(list))
		}
		for i, e := range list {
			typ := "" // unknownType
			if n := x.typ(i); n != unknownType {
				typ = x.typeNames[n]
			}
			if e.typ == "" && x.typ(i) != unknownType {
				t.Fatalf("event %d of no type: type number %d, want unknownType (read whatever the replay's types)", i, x.typ(i))
			}
			if x.pos(i) != e.pos || x.rec(i) != e.rec || typ != e.typ {
				t.Fatalf("event %d: %v %d %q, want %v %d %q", i, x.pos(i), x.rec(i), typ, e.pos, e.rec, e.typ)
			}
		}
		for i, e := range list {
			from := rapid.Int64Range(-90_000e9, 90_000e9).Draw(t, "from")
			to := from + rapid.Int64Range(1, 4e9).Draw(t, "for")
			within := x.occurredWithin(i, from, to)
			if e.occ.IsZero() || e.occ.Year() < 1900 {
				if !within {
					t.Fatalf("event %d, occurred time unknown: refused", i)
				}
				continue
			}
			o := e.occ.UnixNano()
			if o >= from && o < to && !within {
				t.Fatalf("event %d occurred at %d, within [%d, %d): refused", i, o, from, to)
			}
			if (o < from-1e9 || o >= to+1e9) && within {
				t.Fatalf("event %d occurred at %d, over a second off [%d, %d): not refused", i, o, from, to)
			}
		}
		for range 20 {
			tn := int64(rapid.IntRange(900, 1_000+6*n+10).Draw(t, "as of"))
			want := 0
			for want < len(list) && list[want].rec <= tn {
				want++
			}
			if got := x.prefixUpTo(tn); got != want {
				t.Fatalf("prefix up to %d: %d events, want %d", tn, got, want)
			}
		}
	})
}

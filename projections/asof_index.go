package projections

import (
	"math"
	"sort"
	"time"

	"perfledger/domain"
)

// timeChunk is the number of events in a chunk of a timeIndex.
const timeChunk = 4096

// timeIndex is the position, recorded time, type and occurred time of
// every event of the log, in log order: 22 bytes an event in fixed-size
// chunks (growing it never copies what it holds), plus 8 bytes for the
// events of a chunk whose Prepare position differs from their Commit (none
// in a dense store).
type timeIndex struct {
	chunks   [][]timeEntry
	prepares [][]uint64 // per chunk: nil, or every entry's Prepare
	types    [][]uint16 // per chunk: every entry's type, by number (typeNames)
	// occs are per chunk every entry's occurred time, in whole seconds
	// after its recorded time's (noOccurred: unknown).
	occs  [][]int32
	maxes []int64 // per chunk: the running maximum of rec at its end
	n     int
	// typeNames are the types by number; past 65,535 of them, the others
	// share unknownType.
	typeNames []string
	typeNo    map[string]uint16
}

// unknownType is the type number of the events whose type the log did not
// tell, and of the types past the first 65,535 (a replay reads their events
// whatever its types).
const unknownType = 0xffff

// noOccurred is the occurred time of an event whose occurred time is zero,
// or more than 68 years from its recorded time.
const noOccurred = math.MinInt32

type timeEntry struct {
	commit uint64
	rec    int64 // RecordedAt, Unix ns
}

// len is the number of events indexed.
func (x *timeIndex) len() int { return x.n }

// add indexes the next event of the log.
func (x *timeIndex) add(pos domain.Position, rec int64, typ string, occurred time.Time) {
	c, i := x.n/timeChunk, x.n%timeChunk
	if i == 0 {
		x.chunks = append(x.chunks, make([]timeEntry, 0, timeChunk))
		x.types = append(x.types, make([]uint16, 0, timeChunk))
		x.occs = append(x.occs, make([]int32, 0, timeChunk))
		x.prepares = append(x.prepares, nil)
		prev := rec
		if c > 0 {
			prev = x.maxes[c-1]
		}
		x.maxes = append(x.maxes, prev)
	}
	x.chunks[c] = append(x.chunks[c], timeEntry{commit: pos.Commit, rec: rec})
	x.types[c] = append(x.types[c], x.typeNum(typ))
	occ := int32(noOccurred)
	if !occurred.IsZero() {
		if d := occurred.Unix() - floorSec(rec); d > noOccurred && d <= math.MaxInt32 {
			occ = int32(d)
		}
	}
	x.occs[c] = append(x.occs[c], occ)
	if pos.Prepare != pos.Commit && x.prepares[c] == nil {
		x.prepares[c] = make([]uint64, i, timeChunk)
		for j, e := range x.chunks[c][:i] {
			x.prepares[c][j] = e.commit
		}
	}
	if x.prepares[c] != nil {
		x.prepares[c] = append(x.prepares[c], pos.Prepare)
	}
	x.maxes[c] = max(x.maxes[c], rec)
	x.n++
}

// pos returns the position of the i-th event (from 0).
func (x *timeIndex) pos(i int) domain.Position {
	c, j := i/timeChunk, i%timeChunk
	p := domain.Position{Commit: x.chunks[c][j].commit, Prepare: x.chunks[c][j].commit}
	if x.prepares[c] != nil {
		p.Prepare = x.prepares[c][j]
	}
	return p
}

// typeNum returns the number of a type, adding it if new; unknownType for
// a log that does not tell the type ("") and past 65,535 types.
func (x *timeIndex) typeNum(typ string) uint16 {
	if typ == "" {
		return unknownType
	}
	if n, ok := x.typeNo[typ]; ok {
		return n
	}
	if len(x.typeNames) == unknownType {
		return unknownType
	}
	if x.typeNo == nil {
		x.typeNo = map[string]uint16{}
	}
	n := uint16(len(x.typeNames))
	x.typeNames = append(x.typeNames, typ)
	x.typeNo[typ] = n
	return n
}

// floorSec is the whole second of a Unix time in nanoseconds.
func floorSec(ns int64) int64 {
	s := ns / 1e9
	if ns%1e9 < 0 {
		s--
	}
	return s
}

// occurredWithin reports whether the i-th event can have occurred in
// [from, to) (Unix nanoseconds): its occurred time is known to the second,
// and unknown ones can have.
func (x *timeIndex) occurredWithin(i int, from, to int64) bool {
	d := x.occs[i/timeChunk][i%timeChunk]
	if d == noOccurred {
		return true
	}
	low := (floorSec(x.rec(i)) + int64(d)) * 1e9
	return low < to && low+1e9 > from
}

// typ returns the type number of the i-th event (unknownType: any).
func (x *timeIndex) typ(i int) uint16 { return x.types[i/timeChunk][i%timeChunk] }

// rec returns the recorded time of the i-th event.
func (x *timeIndex) rec(i int) int64 { return x.chunks[i/timeChunk][i%timeChunk].rec }

// prefixUpTo returns the number of events of the longest prefix of the log
// whose recorded times are all at most tn.
func (x *timeIndex) prefixUpTo(tn int64) int {
	c := sort.Search(len(x.maxes), func(c int) bool { return x.maxes[c] > tn })
	if c == len(x.maxes) {
		return x.n
	}
	for j, e := range x.chunks[c] {
		if e.rec > tn {
			return c*timeChunk + j
		}
	}
	return c*timeChunk + len(x.chunks[c]) // unreachable: maxes[c] > tn
}

// after returns the number of indexed events at or before p (the index of
// the first event after p).
func (x *timeIndex) after(p domain.Position) int {
	return sort.Search(x.n, func(i int) bool { return p.Less(x.pos(i)) })
}

package esdbtest

import (
	"bytes"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"regexp"
	"sort"
	"strings"
)

// record is one event of the in-memory transaction log. Records are
// immutable once appended, so readers may hold them without the lock.
type record struct {
	id          [16]byte
	stream      string
	rev         uint64
	commit      uint64
	prepare     uint64
	typ         string
	contentType string
	created     int64 // .NET ticks (100 ns) since the Unix epoch
	data        []byte
	meta        []byte
	resp        *api.ReadResp // the read response, structured id (immutable)
}

// pos is a $all position (commit, prepare).
type pos struct{ commit, prepare uint64 }

func (r *record) pos() pos { return pos{r.commit, r.prepare} }

func (p pos) less(q pos) bool {
	if p.commit != q.commit {
		return p.commit < q.commit
	}
	return p.prepare < q.prepare
}

// streamState is what the server knows of one stream.
type streamState struct {
	recs           []*record        // recs[i] has revision i
	ids            map[[16]byte]int // event id → revision, for idempotent appends with Any
	truncateBefore uint64           // soft delete: revisions below are hidden
	tombstoned     bool
}

// exists reports whether the stream has a visible event; last is the
// revision of its last event (visible or not).
func (s *streamState) exists() bool {
	return s != nil && !s.tombstoned && uint64(len(s.recs)) > s.truncateBefore
}

func (s *streamState) last() (uint64, bool) {
	if s == nil || len(s.recs) == 0 {
		return 0, false
	}
	return uint64(len(s.recs) - 1), true
}

// visible returns the stream's records a read may see.
func (s *streamState) visible() []*record {
	if s == nil || s.tombstoned || uint64(len(s.recs)) <= s.truncateBefore {
		return nil
	}
	return s.recs[s.truncateBefore:]
}

// searchAll returns the index of the first record of log at or after p.
func searchAll(log []*record, p pos) int {
	return sort.Search(len(log), func(i int) bool { return !log[i].pos().less(p) })
}

// filter is a server-side $all filter (on the event type or the stream name).
type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	subject := r.stream
	if f.onType {
		subject = r.typ
	}
	if f.re != nil {
		return f.re.MatchString(subject)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

// sameIDs reports whether recs carry exactly ids, in order.
func sameIDs(recs []*record, ids [][16]byte) bool {
	if len(recs) != len(ids) {
		return false
	}
	for i, r := range recs {
		if !bytes.Equal(r.id[:], ids[i][:]) {
			return false
		}
	}
	return true
}

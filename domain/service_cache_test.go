package domain

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"testing"
	"unsafe"
)

// pagedStore hands out, like the embedded store, events whose ids are
// substrings of one string holding the whole page it read.
type pagedStore struct {
	*fakeStore
	pages []string
}

func (s *pagedStore) ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		var evs []Event
		for e, err := range s.fakeStore.ReadStream(ctx, stream, from) {
			if err != nil {
				yield(Event{}, err)
				return
			}
			evs = append(evs, e)
		}
		var b strings.Builder
		for _, e := range evs {
			b.WriteString(e.ID)
		}
		page := b.String()
		s.pages = append(s.pages, page)
		off := 0
		for _, e := range evs {
			e.ID = page[off : off+len(e.ID)]
			off += len(e.ID)
			if !yield(e, nil) {
				return
			}
		}
	}
}

// within reports whether s lies in the memory of page.
func within(s, page string) bool {
	if len(s) == 0 || len(page) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(page)))
	return p >= lo && p < lo+uintptr(len(page))
}

// TestCachedStateHoldsNoPageOfTheStore: a stream's cached entry remembers
// its recent event ids as copies, not as views into the page the store
// read, which would keep every such page alive for as long as the entry is
// cached (60 MB of a server's heap after its policies went through a
// million-event log).
func TestCachedStateHoldsNoPageOfTheStore(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	for i := range 5 {
		w.exec(t, LogActivity{ActivityID: fmt.Sprintf("a-%d", i), MemberID: "m-1", Kind: "visit", Quantity: 1, OccurredAt: testNow})
	}
	store := &pagedStore{fakeStore: w.store}
	svc := NewService(store, w.keys, w.clock.Now) // nothing cached: it reads the stream
	if _, err := svc.Execute(context.Background(), LogActivity{ActivityID: "a-paged", MemberID: "m-1", Kind: "visit", Quantity: 1, OccurredAt: testNow},
		CommandMeta{CommandID: "paged-1", Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	if len(store.pages) == 0 {
		t.Fatal("the service read no stream through the store")
	}
	e := svc.cache.get(MemberStream("m-1"))
	ids := 0
	for _, r := range e.recent {
		if r.id == "" {
			continue
		}
		ids++
		for _, page := range store.pages {
			if within(r.id, page) {
				t.Fatalf("cached id %q points into a page the store read", r.id)
			}
		}
	}
	if ids < 6 {
		t.Fatalf("%d ids remembered; want the stream's events and the new one", ids)
	}
}

// Package storetest is the contract suite every domain.EventStore must pass,
// run like testing/fstest:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) domain.EventStore { return newStore(t) }, storetest.Features{Dense: true})
//	}
//
// Every case writes to fresh, randomly named streams and only looks at those
// streams when it reads the global log, so newStore may return one shared
// store (a real EventStoreDB is never emptied) or a fresh one per case.
//
// Points the port leaves open and the suite pins down:
//   - A retried append (same ids) returns the original AppendResult and
//     stores nothing. With NoStream or Exact this holds whatever was
//     appended to the stream since; with Any it is guaranteed only while the
//     retried events are still the stream's last ones. Different ids at
//     revisions already taken are a conflict.
//   - Times come back in UTC and equal (time.Time.Equal, to the nanosecond)
//     to what was appended; a zero RecordedAt is stamped by the store.
//   - Subscribe delivers each event once, in global order, across the switch
//     from catch-up to live, and ends with ctx.Err() when ctx is cancelled.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"perfledger/domain"
)

// Features says what a backend can do beyond the common contract.
type Features struct {
	// Dense: positions form the sequence 1, 2, 3 … with Commit == Prepare,
	// so the events of one append have consecutive positions. EventStoreDB
	// uses byte offsets and sets it false.
	Dense bool
}

// timeout bounds every case so that a broken store fails instead of hanging.
// It is a safety net, not a performance assertion.
const timeout = 60 * time.Second

// Run runs the contract suite against the stores newStore returns. newStore
// is called once per case; it may return the same store each time.
func Run(t *testing.T, newStore func(t testing.TB) domain.EventStore, f Features) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s domain.EventStore, f Features)
	}{
		{"appends_are_read_back_in_order", testOrder},
		{"expected_revision_is_enforced", testExpected},
		{"racing_exact_appends_win_each_revision_once", testRace},
		{"retried_append_is_idempotent", testIdempotent},
		{"stream_reads_start_at_any_revision", testReadStreamFrom},
		{"global_reads_start_after_any_position", testReadAllFrom},
		{"hash_chain_verifies", testChain},
		{"recorded_at_is_stamped_or_kept", testRecordedAt},
		{"subscription_catches_up_then_goes_live", testSubscribe},
		{"subscription_ends_on_cancel", testSubscribeCancel},
		{"large_and_unicode_events_round_trip", testLargeUnicode},
		{"invalid_append_stores_nothing", testInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t), f)
		})
	}
}

// StreamName returns a fresh stream name with the given prefix, unique
// across runs.
func StreamName(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(domain.NewID(), "-", "")
}

// Events returns n valid events with fresh ids and a JSON payload of about
// dataSize bytes (at least a few bytes).
func Events(n, dataSize int) []domain.NewEvent {
	evs := make([]domain.NewEvent, n)
	base := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	for i := range evs {
		evs[i] = domain.NewEvent{
			ID:            domain.NewID(),
			Type:          "StoreTestEvent.v1",
			Data:          payload(i, dataSize),
			OccurredAt:    base.Add(time.Duration(i)*time.Second + 123456789),
			Actor:         "user:storetest",
			CorrelationID: "corr-" + fmt.Sprint(i),
			CausationID:   "cause-" + fmt.Sprint(i),
		}
	}
	return evs
}

func payload(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"n":%d,"pad":"`, i)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// collect drains seq, returning the events and the first error.
func collect(seq iter.Seq2[domain.Event, error]) ([]domain.Event, error) {
	var out []domain.Event
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func mustAppend(t testing.TB, s domain.EventStore, stream string, exp domain.ExpectedRevision, evs []domain.NewEvent) domain.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, exp, evs)
	if err != nil {
		t.Fatalf("Append(%q, %s, %d events): %v", stream, exp, len(evs), err)
	}
	return res
}

func readStream(t testing.TB, s domain.EventStore, stream string, from uint64) []domain.Event {
	t.Helper()
	evs, err := collect(s.ReadStream(ctxFor(t), stream, from))
	if err != nil {
		t.Fatalf("ReadStream(%q, %d): %v", stream, from, err)
	}
	return evs
}

// readAllOf reads the global log after pos, keeping only the events of
// streams whose names start with prefix.
func readAllOf(t testing.TB, s domain.EventStore, after domain.Position, prefix string) []domain.Event {
	t.Helper()
	var out []domain.Event
	prev := after
	for e, err := range s.ReadAll(ctxFor(t), after) {
		if err != nil {
			t.Fatalf("ReadAll(%s): %v", after, err)
		}
		if e.Position.IsZero() || !prev.Less(e.Position) {
			t.Fatalf("ReadAll(%s): position %s after %s: want strictly increasing and non-zero", after, e.Position, prev)
		}
		prev = e.Position
		if strings.HasPrefix(e.Stream, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// checkEvent compares a stored event with what was appended.
func checkEvent(t testing.TB, got domain.Event, want domain.NewEvent, stream string, rev uint64) {
	t.Helper()
	var diffs []string
	add := func(field string, g, w any) { diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Type != want.Type {
		add("Type", got.Type, want.Type)
	}
	if got.Stream != stream {
		add("Stream", got.Stream, stream)
	}
	if got.Revision != rev {
		add("Revision", got.Revision, rev)
	}
	if !bytes.Equal(got.Data, want.Data) {
		add("Data", shorten(got.Data), shorten(want.Data))
	}
	if !got.OccurredAt.Equal(want.OccurredAt) || got.OccurredAt.Location() != time.UTC {
		add("OccurredAt", got.OccurredAt, want.OccurredAt.UTC())
	}
	if !want.RecordedAt.IsZero() && !got.RecordedAt.Equal(want.RecordedAt) {
		add("RecordedAt", got.RecordedAt, want.RecordedAt.UTC())
	}
	if got.RecordedAt.IsZero() || got.RecordedAt.Location() != time.UTC {
		add("RecordedAt", got.RecordedAt, "a non-zero UTC time")
	}
	if got.Actor != want.Actor {
		add("Actor", got.Actor, want.Actor)
	}
	if got.CorrelationID != want.CorrelationID {
		add("CorrelationID", got.CorrelationID, want.CorrelationID)
	}
	if got.CausationID != want.CausationID {
		add("CausationID", got.CausationID, want.CausationID)
	}
	if got.Position.IsZero() {
		add("Position", got.Position, "non-zero")
	}
	if got.Hash == "" {
		add("Hash", got.Hash, "non-empty")
	}
	if len(diffs) > 0 {
		t.Errorf("stored event %s@%d differs:\n  %s", stream, rev, strings.Join(diffs, "\n  "))
	}
}

func shorten(b []byte) string {
	if len(b) > 60 {
		return fmt.Sprintf("%s… (%d bytes)", b[:60], len(b))
	}
	return string(b)
}

func checkStream(t testing.TB, s domain.EventStore, stream string, want []domain.NewEvent) []domain.Event {
	t.Helper()
	got := readStream(t, s, stream, 0)
	if len(got) != len(want) {
		t.Fatalf("ReadStream(%q) returned %d events, want %d", stream, len(got), len(want))
	}
	for i := range got {
		checkEvent(t, got[i], want[i], stream, uint64(i))
		if i > 0 && !got[i-1].Position.Less(got[i].Position) {
			t.Errorf("stream %q: position %s at revision %d not after %s", stream, got[i].Position, i, got[i-1].Position)
		}
	}
	return got
}

func wantConflict(t testing.TB, err error, actual uint64, hasStream bool) {
	t.Helper()
	if !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	var ce *domain.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *domain.ConflictError", err, err)
	}
	if ce.HasStream != hasStream || (hasStream && ce.Actual != actual) {
		t.Errorf("ConflictError{Actual: %d, HasStream: %t}, want {Actual: %d, HasStream: %t}", ce.Actual, ce.HasStream, actual, hasStream)
	}
}

func testOrder(t *testing.T, s domain.EventStore, f Features) {
	stream := StreamName("storetest-order")
	first, second := Events(3, 40), Events(2, 40)
	r1 := mustAppend(t, s, stream, domain.NoStream(), first)
	r2 := mustAppend(t, s, stream, domain.Exact(2), second)
	if r1.Revision != 2 || r2.Revision != 4 {
		t.Errorf("result revisions = %d, %d; want 2, 4", r1.Revision, r2.Revision)
	}
	got := checkStream(t, s, stream, append(append([]domain.NewEvent{}, first...), second...))
	if got[2].Position != r1.Position || got[4].Position != r2.Position {
		t.Errorf("result positions = %s, %s; want the last events' %s, %s", r1.Position, r2.Position, got[2].Position, got[4].Position)
	}
	if f.Dense {
		for i := 1; i < 3; i++ {
			if want := domain.Seq(got[i-1].Position.Commit + 1); got[i].Position != want {
				t.Errorf("dense store: position of revision %d = %s, want %s", i, got[i].Position, want)
			}
		}
	}
	all := readAllOf(t, s, domain.Position{}, stream)
	if len(all) != 5 {
		t.Fatalf("ReadAll found %d events of the stream, want 5", len(all))
	}
	for i := range all {
		if all[i].ID != got[i].ID || all[i].Position != got[i].Position {
			t.Errorf("ReadAll event %d = %s@%s, want %s@%s", i, all[i].ID, all[i].Position, got[i].ID, got[i].Position)
		}
	}
}

func testExpected(t *testing.T, s domain.EventStore, _ Features) {
	ctx := ctxFor(t)
	t.Run("exact_on_missing_stream_conflicts", func(t *testing.T) {
		stream := StreamName("storetest-exp")
		_, err := s.Append(ctx, stream, domain.Exact(0), Events(1, 20))
		wantConflict(t, err, 0, false)
		if got := readStream(t, s, stream, 0); len(got) != 0 {
			t.Errorf("stream has %d events after a conflict, want 0", len(got))
		}
	})
	t.Run("no_stream_on_existing_stream_conflicts", func(t *testing.T) {
		stream := StreamName("storetest-exp")
		mustAppend(t, s, stream, domain.NoStream(), Events(2, 20))
		_, err := s.Append(ctx, stream, domain.NoStream(), Events(1, 20))
		wantConflict(t, err, 1, true)
		if got := readStream(t, s, stream, 0); len(got) != 2 {
			t.Errorf("stream has %d events after a conflict, want 2", len(got))
		}
	})
	t.Run("wrong_exact_conflicts_with_actual_revision", func(t *testing.T) {
		stream := StreamName("storetest-exp")
		mustAppend(t, s, stream, domain.NoStream(), Events(2, 20))
		for _, rev := range []uint64{0, 2, 7} {
			_, err := s.Append(ctx, stream, domain.Exact(rev), Events(1, 20))
			wantConflict(t, err, 1, true)
		}
		if got := readStream(t, s, stream, 0); len(got) != 2 {
			t.Errorf("stream has %d events after conflicts, want 2", len(got))
		}
	})
	t.Run("any_appends_to_missing_and_existing_streams", func(t *testing.T) {
		stream := StreamName("storetest-exp")
		a, b := Events(1, 20), Events(2, 20)
		if r := mustAppend(t, s, stream, domain.Any(), a); r.Revision != 0 {
			t.Errorf("revision = %d, want 0", r.Revision)
		}
		if r := mustAppend(t, s, stream, domain.Any(), b); r.Revision != 2 {
			t.Errorf("revision = %d, want 2", r.Revision)
		}
		checkStream(t, s, stream, append(a, b...))
	})
	t.Run("exact_appends_at_the_last_revision", func(t *testing.T) {
		stream := StreamName("storetest-exp")
		var all []domain.NewEvent
		for i := range 4 {
			evs := Events(1, 20)
			exp := domain.Exact(uint64(i - 1))
			if i == 0 {
				exp = domain.NoStream()
			}
			if r := mustAppend(t, s, stream, exp, evs); r.Revision != uint64(i) {
				t.Errorf("revision = %d, want %d", r.Revision, i)
			}
			all = append(all, evs...)
		}
		checkStream(t, s, stream, all)
	})
}

func testRace(t *testing.T, s domain.EventStore, _ Features) {
	const writers, perWriter = 8, 6
	stream := StreamName("storetest-race")
	ctx := ctxFor(t)
	var (
		mu      sync.Mutex
		won     = make(map[uint64]string) // revision → event id
		wg      sync.WaitGroup
		errs    = make(chan error, writers)
		appends = make(map[string]bool)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				ev := Events(1, 30)
				ev[0].Actor = fmt.Sprintf("writer-%d", w)
				for attempt := 0; ; attempt++ {
					if attempt > 10000 {
						errs <- fmt.Errorf("writer %d: no progress after %d attempts", w, attempt)
						return
					}
					exp := domain.NoStream()
					var last domain.Event
					n := 0
					for e, err := range s.ReadStream(ctx, stream, 0) {
						if err != nil {
							errs <- err
							return
						}
						last, n = e, n+1
					}
					if n > 0 {
						exp = domain.Exact(last.Revision)
					}
					res, err := s.Append(ctx, stream, exp, ev)
					if errors.Is(err, domain.ErrConflict) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if prev, dup := won[res.Revision]; dup {
						errs <- fmt.Errorf("revision %d won twice: by %s and %s", res.Revision, prev, ev[0].ID)
					}
					won[res.Revision] = ev[0].ID
					appends[ev[0].ID] = true
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := readStream(t, s, stream, 0)
	if len(got) != writers*perWriter {
		t.Fatalf("stream has %d events, want %d", len(got), writers*perWriter)
	}
	for i, e := range got {
		if e.Revision != uint64(i) {
			t.Errorf("event %d has revision %d", i, e.Revision)
		}
		if won[e.Revision] != e.ID {
			t.Errorf("revision %d holds %s, but Append reported %s", e.Revision, e.ID, won[e.Revision])
		}
		delete(appends, e.ID)
	}
	if len(appends) != 0 {
		t.Errorf("%d acknowledged events missing from the stream", len(appends))
	}
}

// testIdempotent: re-appending the same ids at the revisions they were stored
// at returns the original result and stores nothing. Guaranteed for NoStream
// and Exact whatever was appended since; with Any it is guaranteed only when
// the retried events are still the stream's last ones (nothing was appended
// in between), which is what a client retrying a timed-out append sees.
func testIdempotent(t *testing.T, s domain.EventStore, _ Features) {
	ctx := ctxFor(t)
	stream := StreamName("storetest-idem")
	a, b, c := Events(2, 20), Events(1, 20), Events(2, 20)
	ra := mustAppend(t, s, stream, domain.NoStream(), a)
	rb := mustAppend(t, s, stream, domain.Exact(1), b)

	check := func(t *testing.T, name string, exp domain.ExpectedRevision, evs []domain.NewEvent, want domain.AppendResult) {
		t.Helper()
		got, err := s.Append(ctx, stream, exp, evs)
		if err != nil {
			t.Fatalf("%s: retried Append: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: retried Append = %+v, want the original %+v", name, got, want)
		}
	}
	t.Run("exact_retry_returns_original_result", func(t *testing.T) {
		check(t, "exact", domain.Exact(1), b, rb)
	})
	t.Run("no_stream_retry_returns_original_result", func(t *testing.T) {
		check(t, "no stream", domain.NoStream(), a, ra)
	})
	t.Run("any_retry_of_the_last_append_returns_original_result", func(t *testing.T) {
		rc := mustAppend(t, s, stream, domain.Any(), c)
		check(t, "any", domain.Any(), c, rc)
	})
	t.Run("different_ids_at_taken_revisions_conflict", func(t *testing.T) {
		_, err := s.Append(ctx, stream, domain.Exact(1), Events(1, 20))
		wantConflict(t, err, 4, true)
	})
	want := append(append(append([]domain.NewEvent{}, a...), b...), c...)
	checkStream(t, s, stream, want)
}

func testReadStreamFrom(t *testing.T, s domain.EventStore, _ Features) {
	stream := StreamName("storetest-from")
	evs := Events(10, 30)
	mustAppend(t, s, stream, domain.NoStream(), evs[:4])
	mustAppend(t, s, stream, domain.Exact(3), evs[4:])
	for from := range uint64(12) {
		got := readStream(t, s, stream, from)
		wantN := 0
		if from < 10 {
			wantN = 10 - int(from)
		}
		if len(got) != wantN {
			t.Errorf("ReadStream(from %d) returned %d events, want %d", from, len(got), wantN)
			continue
		}
		for i, e := range got {
			checkEvent(t, e, evs[int(from)+i], stream, from+uint64(i))
		}
	}
	if got := readStream(t, s, StreamName("storetest-missing"), 0); len(got) != 0 {
		t.Errorf("ReadStream of an unknown stream returned %d events, want 0", len(got))
	}
	// Breaking out of the loop early must be safe.
	for e, err := range s.ReadStream(ctxFor(t), stream, 0) {
		if err != nil || e.Revision != 0 {
			t.Errorf("first event = %d, %v; want revision 0", e.Revision, err)
		}
		break
	}
}

func testReadAllFrom(t *testing.T, s domain.EventStore, f Features) {
	prefix := StreamName("storetest-all")
	streams := []string{prefix + "-a", prefix + "-b", prefix + "-c"}
	var ids []string
	for i := range 6 {
		stream := streams[i%3]
		evs := Events(1+i%2, 20)
		mustAppend(t, s, stream, domain.Any(), evs)
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
	}
	all := readAllOf(t, s, domain.Position{}, prefix)
	if len(all) != len(ids) {
		t.Fatalf("ReadAll found %d events of the case, want %d", len(all), len(ids))
	}
	for i, e := range all {
		if e.ID != ids[i] {
			t.Errorf("ReadAll event %d = %s, want %s (append order)", i, e.ID, ids[i])
		}
	}
	for i, e := range all {
		got := readAllOf(t, s, e.Position, prefix)
		if len(got) != len(all)-i-1 {
			t.Errorf("ReadAll(after %s) found %d events, want %d", e.Position, len(got), len(all)-i-1)
			continue
		}
		for j, g := range got {
			if g.ID != all[i+1+j].ID || g.Position != all[i+1+j].Position {
				t.Errorf("ReadAll(after %s) event %d = %s@%s, want %s@%s", e.Position, j, g.ID, g.Position, all[i+1+j].ID, all[i+1+j].Position)
			}
		}
	}
	if f.Dense {
		for i := 1; i < len(all); i++ {
			if all[i].Position.Commit != all[i].Position.Prepare {
				t.Errorf("dense store: position %s has Commit != Prepare", all[i].Position)
			}
		}
	}
	for e, err := range s.ReadAll(ctxFor(t), all[0].Position) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if !all[0].Position.Less(e.Position) {
			t.Errorf("ReadAll(after %s) started at %s", all[0].Position, e.Position)
		}
		break
	}
}

func testChain(t *testing.T, s domain.EventStore, _ Features) {
	prefix := StreamName("storetest-chain")
	streams := []string{prefix + "-a", prefix + "-b"}
	for i := range 6 {
		mustAppend(t, s, streams[i%2], domain.Any(), Events(1+i%3, 50))
	}
	for _, stream := range streams {
		v := domain.NewChainVerifier()
		evs := readStream(t, s, stream, 0)
		for _, e := range evs {
			if err := v.Check(&e); err != nil {
				t.Errorf("ReadStream(%q): %v", stream, err)
			}
		}
		if evs[0].PrevHash != "" {
			t.Errorf("revision 0 PrevHash = %q, want empty", evs[0].PrevHash)
		}
		// Reading from the middle gives the same hashes.
		mid := readStream(t, s, stream, 2)
		if mid[0].Hash != evs[2].Hash || mid[0].PrevHash != evs[1].Hash {
			t.Errorf("ReadStream(from 2) hashes %s/%s, want %s/%s", mid[0].PrevHash, mid[0].Hash, evs[1].Hash, evs[2].Hash)
		}
	}
	v := domain.NewChainVerifier()
	for _, e := range readAllOf(t, s, domain.Position{}, prefix) {
		if err := v.Check(&e); err != nil {
			t.Errorf("ReadAll: %v", err)
		}
	}
}

func testRecordedAt(t *testing.T, s domain.EventStore, _ Features) {
	stream := StreamName("storetest-rec")
	evs := Events(3, 20)
	given := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)
	evs[1].RecordedAt = given
	// A non-UTC time is stored as the same instant and read back in UTC.
	evs[2].RecordedAt = given.In(time.FixedZone("UTC+5", 5*3600)).Add(time.Nanosecond)
	evs[2].OccurredAt = evs[2].OccurredAt.In(time.FixedZone("UTC-3", -3*3600))
	mustAppend(t, s, stream, domain.NoStream(), evs)
	got := checkStream(t, s, stream, evs)
	if got[0].RecordedAt.IsZero() {
		t.Errorf("zero RecordedAt was not stamped")
	}
	if !got[1].RecordedAt.Equal(given) {
		t.Errorf("given RecordedAt = %v, want %v", got[1].RecordedAt, given)
	}
}

func testSubscribe(t *testing.T, s domain.EventStore, _ Features) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	prefix := StreamName("storetest-sub")
	marker := mustAppend(t, s, prefix+"-marker", domain.NoStream(), Events(1, 20))

	var (
		mu       sync.Mutex
		appended []string // ids in acknowledged order per stream
	)
	record := func(evs []domain.NewEvent) {
		mu.Lock()
		for _, e := range evs {
			appended = append(appended, e.ID)
		}
		mu.Unlock()
	}
	// Catch-up part: stored before the subscription starts.
	for i := range 5 {
		evs := Events(4, 30)
		mustAppend(t, s, fmt.Sprintf("%s-%d", prefix, i%2), domain.Any(), evs)
		record(evs)
	}
	const live = 40
	total := 20 + live
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		<-started
		for i := range live / 2 {
			evs := Events(2, 30)
			if _, err := s.Append(ctx, fmt.Sprintf("%s-%d", prefix, i%3), domain.Any(), evs); err != nil {
				done <- err
				return
			}
			record(evs)
		}
		done <- nil
	}()

	seen := make(map[string]bool)
	var got []domain.Event
	prev := marker.Position
	var endErr error
	first := true
	for e, err := range s.Subscribe(ctx, marker.Position) {
		if first {
			close(started) // appends race with the switch from catch-up to live
			first = false
		}
		if err != nil {
			endErr = err
			break
		}
		if !prev.Less(e.Position) {
			t.Errorf("Subscribe: position %s after %s", e.Position, prev)
		}
		prev = e.Position
		if !strings.HasPrefix(e.Stream, prefix) {
			continue
		}
		if seen[e.ID] {
			t.Errorf("Subscribe: event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		got = append(got, e)
		if len(got) == total {
			cancel()
		}
	}
	if first {
		close(started)
	}
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("concurrent Append: %v", err)
	}
	if !errors.Is(endErr, context.Canceled) {
		t.Errorf("Subscribe ended with %v, want context.Canceled after the cancel", endErr)
	}
	if len(got) != total {
		t.Fatalf("Subscribe delivered %d events of the case, want %d", len(got), total)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range appended {
		if !seen[id] {
			t.Errorf("Subscribe missed event %s", id)
		}
	}
	// Per stream, events arrive in revision order with a verifying chain.
	v := domain.NewChainVerifier()
	for _, e := range got {
		if err := v.Check(&e); err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	}
}

func testSubscribeCancel(t *testing.T, s domain.EventStore, _ Features) {
	stream := StreamName("storetest-subcancel")
	res := mustAppend(t, s, stream, domain.NoStream(), Events(3, 20))
	t.Run("cancel_while_live_yields_context_error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxFor(t))
		defer cancel()
		evs := Events(1, 20)
		go func() {
			// Appended once the subscription has caught up (or during it):
			// either way it must be delivered.
			_, _ = s.Append(ctx, stream, domain.Exact(2), evs)
		}()
		var last error
		delivered := false
		for e, err := range s.Subscribe(ctx, res.Position) {
			if err != nil {
				last = err
				continue // the iterator must end by itself after the error
			}
			if e.ID == evs[0].ID {
				delivered = true
				cancel() // the subscription is now waiting for more
			}
		}
		if !delivered {
			t.Errorf("live event not delivered")
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("last yielded error = %v, want context.Canceled", last)
		}
	})
	t.Run("cancel_ends_the_subscription", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxFor(t))
		go func() {
			cancel()
		}()
		var last error
		count := 0
		for _, err := range s.Subscribe(ctx, res.Position) {
			count++
			if err != nil {
				last = err
			}
			if count > 1_000_000 {
				t.Fatal("Subscribe did not end after cancel")
			}
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("last yielded error = %v, want context.Canceled", last)
		}
	})
	t.Run("break_stops_the_subscription", func(t *testing.T) {
		ctx := ctxFor(t)
		first := domain.Position{}
		before := readStream(t, s, stream, 0)[0].Position
		// Subscribing from just before the stream's first event: the first
		// event yielded is at or before the stream's second event.
		for e, err := range s.Subscribe(ctx, before) {
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			first = e.Position
			break
		}
		if !before.Less(first) {
			t.Errorf("first position %s not after %s", first, before)
		}
	})
}

func testLargeUnicode(t *testing.T, s domain.EventStore, _ Features) {
	stream := StreamName("storetest-ünïcødé-東京-🚀")
	evs := Events(3, 20)
	evs[0].Data = payload(0, 900*1024)
	evs[1].Data = []byte(`{"name":"Zoë Ångström","city":"東京","emoji":"🚀🎯","rtl":"שלום","nul":"\u0000"}`)
	evs[1].Actor = "user:zoë-東京"
	evs[1].CorrelationID = "corr-ß-😀"
	evs[2].Data = []byte(`{}`)
	mustAppend(t, s, stream, domain.NoStream(), evs)
	got := checkStream(t, s, stream, evs)
	v := domain.NewChainVerifier()
	for _, e := range got {
		if err := v.Check(&e); err != nil {
			t.Error(err)
		}
	}
	all := readAllOf(t, s, domain.Position{}, stream)
	if len(all) != 3 || !bytes.Equal(all[0].Data, evs[0].Data) {
		t.Errorf("ReadAll did not return the large event intact")
	}
}

func testInvalid(t *testing.T, s domain.EventStore, _ Features) {
	ctx := ctxFor(t)
	valid := func() []domain.NewEvent { return Events(2, 20) }
	cases := []struct {
		name   string
		stream string
		events func() []domain.NewEvent
	}{
		{"empty_stream_name", "", valid},
		{"blank_stream_name", "  ", valid},
		{"no_events", StreamName("storetest-bad"), func() []domain.NewEvent { return nil }},
		{"oversized_event", StreamName("storetest-bad"), func() []domain.NewEvent {
			evs := valid()
			evs[1].Data = bytes.Repeat([]byte("a"), domain.MaxEventSize+1)
			return evs
		}},
		{"id_not_a_uuid", StreamName("storetest-bad"), func() []domain.NewEvent {
			evs := valid()
			evs[1].ID = "not-a-uuid"
			return evs
		}},
		{"empty_id", StreamName("storetest-bad"), func() []domain.NewEvent {
			evs := valid()
			evs[0].ID = ""
			return evs
		}},
		{"empty_type", StreamName("storetest-bad"), func() []domain.NewEvent {
			evs := valid()
			evs[0].Type = ""
			return evs
		}},
		{"repeated_id", StreamName("storetest-bad"), func() []domain.NewEvent {
			evs := valid()
			evs[1].ID = evs[0].ID
			return evs
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Append(ctx, c.stream, domain.Any(), c.events())
			if !errors.Is(err, domain.ErrInvalidAppend) {
				t.Fatalf("err = %v, want ErrInvalidAppend", err)
			}
			if strings.TrimSpace(c.stream) != "" {
				if got := readStream(t, s, c.stream, 0); len(got) != 0 {
					t.Errorf("stream has %d events after an invalid append, want 0", len(got))
				}
			}
		})
	}
}

// BenchAppend measures appends of one event each from writers goroutines,
// each on its own fresh stream with the exact expected revision, b.N appends
// in all, and reports events/s. Stores share it so their figures compare.
func BenchAppend(b *testing.B, s domain.EventStore, writers int) {
	ctx := context.Background()
	prefix := StreamName("storetest-bench")
	var (
		mu   sync.Mutex
		left = b.N
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("%s-%d", prefix, w)
			exp := domain.NoStream()
			for take() {
				res, err := s.Append(ctx, stream, exp, Events(1, 300))
				if err != nil {
					errs <- err
					return
				}
				exp = domain.Exact(res.Revision)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

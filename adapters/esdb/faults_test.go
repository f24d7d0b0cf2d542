package esdb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/esdb"
	"perfledger/adapters/esdb/esdbtest"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// fast is a Config for tests: small pages, quick resubscription.
func fast(url string) esdb.Config {
	return esdb.Config{URL: url, PageSize: 50, RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}
}

// appendN appends n single-event appends to stream and returns their ids.
func appendN(tb testing.TB, s domain.EventStore, stream string, n int) []string {
	tb.Helper()
	ids := make([]string, 0, n)
	for range n {
		evs := storetest.Events(1, 30)
		if _, err := s.Append(ctxFor(tb, 30*time.Second), stream, domain.Any(), evs); err != nil {
			tb.Fatalf("append: %v", err)
		}
		ids = append(ids, evs[0].ID)
	}
	return ids
}

// subscribeIDs subscribes from the start and returns the ids of the first n
// events of streams with prefix, failing on a duplicate or a position that
// does not increase.
func subscribeIDs(t *testing.T, ctx context.Context, s domain.EventStore, prefix string, n int, onEach func(i int)) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got []string
	seen := map[string]bool{}
	var prev domain.Position
	for e, err := range s.Subscribe(ctx, domain.Position{}) {
		if err != nil {
			t.Fatalf("Subscribe after %d events: %v", len(got), err)
		}
		if !prev.Less(e.Position) {
			t.Fatalf("position %s after %s", e.Position, prev)
		}
		prev = e.Position
		if strings.HasPrefix(e.Type, "$") || strings.HasPrefix(e.Stream, "$") {
			t.Fatalf("system event %s in %s reached the domain", e.Type, e.Stream)
		}
		if !strings.HasPrefix(e.Stream, prefix) {
			continue
		}
		if seen[e.ID] {
			t.Fatalf("event %s delivered twice", e.ID)
		}
		seen[e.ID] = true
		got = append(got, e.ID)
		if onEach != nil {
			onEach(len(got))
		}
		if len(got) == n {
			break
		}
	}
	return got
}

func TestSubscriptionResumesAfterDrops(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("drops")
	want := appendN(t, s, stream, 60)
	for range 5 {
		srv.AppendSystemEvent("$stats", "$statsCollected")
	}
	want = append(want, appendN(t, s, stream, 20)...)

	// Every subscription fails after 7 events, during catch-up and live;
	// on top of that, every open subscription is dropped after each live
	// append.
	srv.SetDropAfter(7)
	var live []string
	got := subscribeIDs(t, ctxFor(t, 30*time.Second), s, stream, 80+20, func(i int) {
		if i >= 80 && i < 100 {
			live = append(live, appendN(t, s, stream, 1)...)
			srv.AppendSystemEvent("$stats", "$statsCollected")
			srv.DropSubscriptions()
		}
	})
	want = append(want, live...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered ids (-want +got):\n%s", diff)
	}
	if srv.Subscriptions() < 100/7 {
		t.Errorf("only %d subscriptions were opened: the drops were not exercised", srv.Subscriptions())
	}
}

func TestSubscriptionSurvivesServerRestart(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("restart")
	want := appendN(t, s, stream, 10)
	restarted := false
	got := subscribeIDs(t, ctxFor(t, 30*time.Second), s, stream, 20, func(i int) {
		if i == 10 && !restarted {
			restarted = true
			srv.Stop()
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			want = append(want, appendN(t, s, stream, 10)...)
		}
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered ids (-want +got):\n%s", diff)
	}
}

func TestClientIsRecreatedAfterServerComesBack(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("recreate")
	appendN(t, s, stream, 1)

	srv.Stop()
	// With the server gone, the client fails, then fails its discovery
	// and closes itself for good: every call after that would fail even
	// with the server back, unless the store replaces the client.
	for i := range 4 {
		_, err := s.Append(ctxFor(t, 10*time.Second), stream, domain.Any(), storetest.Events(1, 20))
		if err == nil {
			t.Fatalf("append %d to a stopped server succeeded", i)
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	evs := storetest.Events(1, 20)
	res, err := s.Append(ctxFor(t, 10*time.Second), stream, domain.Exact(0), evs)
	if err != nil {
		t.Fatalf("first append after the server came back: %v", err)
	}
	if res.Revision != 1 {
		t.Errorf("revision = %d, want 1", res.Revision)
	}
}

func TestCallsAreBoundedByTheirContext(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	if err := srv.Hang(); err != nil {
		t.Fatal(err)
	}
	// Default discovery settings: 10 attempts of 5 s against a node that
	// accepts TCP and never answers, 51 s unless the store bounds the call.
	s, err := esdb.Open(esdb.Config{URL: "esdb://" + srv.Addr() + "?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Stop() // lets the abandoned discovery fail fast
		_ = s.Close()
	}()
	stream := storetest.StreamName("bounded")

	t.Run("append_returns_the_deadline_error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := s.Append(ctx, stream, domain.Any(), storetest.Events(1, 20))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("read_yields_the_deadline_error", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		var last error
		for _, err := range s.ReadAll(ctx, domain.Position{}) {
			last = err
		}
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", last)
		}
	})
	t.Run("subscribe_yields_the_cancel_error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}()
		var last error
		for _, err := range s.Subscribe(ctx, domain.Position{}) {
			last = err
		}
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", last)
		}
	})
}

func TestPing(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	t.Run("answers_when_the_server_does", func(t *testing.T) {
		if err := s.Ping(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fails_when_the_server_is_gone", func(t *testing.T) {
		srv.Stop()
		if err := s.Ping(ctxFor(t, 10*time.Second)); err == nil {
			t.Fatal("Ping succeeded with the server stopped")
		}
	})
	t.Run("answers_again_once_it_is_back", func(t *testing.T) {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSlowServerCallEndsAtDeadline(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	appendN(t, s, storetest.StreamName("slow"), 1) // connected
	srv.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Append(ctx, storetest.StreamName("slow"), domain.NoStream(), storetest.Events(1, 20))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	srv.SetDelay(0)
}

func TestClosedStore(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s, err := esdb.Open(fast(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	stream := storetest.StreamName("closed")
	appendN(t, s, stream, 1)

	ended := make(chan error, 1)
	subscribed := make(chan struct{})
	go func() {
		var last error
		for e, err := range s.Subscribe(context.Background(), domain.Position{}) {
			if err != nil {
				last = err
				continue
			}
			if e.Stream == stream {
				close(subscribed)
			}
		}
		ended <- last
	}()
	<-subscribed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; !errors.Is(err, domain.ErrStoreClosed) {
		t.Errorf("subscription ended with %v, want ErrStoreClosed", err)
	}
	_, err = s.Append(context.Background(), stream, domain.Any(), storetest.Events(1, 20))
	if !errors.Is(err, domain.ErrStoreClosed) {
		t.Errorf("append after Close: %v, want ErrStoreClosed", err)
	}
	for _, err := range s.ReadStream(context.Background(), stream, 0) {
		if !errors.Is(err, domain.ErrStoreClosed) {
			t.Errorf("read after Close: %v, want ErrStoreClosed", err)
		}
	}
}

func TestConcurrentAnyAppendsKeepTheChain(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("any-race")
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := s.Append(ctxFor(t, 30*time.Second), stream, domain.Any(), storetest.Events(2, 20)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	v := domain.NewChainVerifier()
	n := 0
	for e, err := range s.ReadStream(ctxFor(t, 30*time.Second), stream, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Check(&e); err != nil {
			t.Error(err)
		}
		n++
	}
	if n != 2*writers*each {
		t.Errorf("stream holds %d events, want %d", n, 2*writers*each)
	}
}

func TestEnvelopeIsStoredInMetadata(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("envelope")
	evs := storetest.Events(1, 20)
	evs[0].RecordedAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if _, err := s.Append(ctxFor(t, 10*time.Second), stream, domain.NoStream(), evs); err != nil {
		t.Fatal(err)
	}

	conf, err := client.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	conf.Logger = client.NoopLogging()
	c, err := client.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	rs, err := c.ReadStream(ctxFor(t, 10*time.Second), stream, client.ReadStreamOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	raw, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if raw.Event.EventID.String() != evs[0].ID {
		t.Errorf("EventStoreDB event id = %s, want the domain id %s", raw.Event.EventID, evs[0].ID)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw.Event.UserMetadata, &meta); err != nil {
		t.Fatalf("metadata is not JSON: %v", err)
	}
	stored := readOne(t, s, stream)
	want := map[string]any{
		"occurred_at":    evs[0].OccurredAt.UTC().Format(time.RFC3339Nano),
		"recorded_at":    "2026-01-02T03:04:05.000000006Z",
		"actor":          evs[0].Actor,
		"correlation_id": evs[0].CorrelationID,
		"causation_id":   evs[0].CausationID,
		"prev_hash":      "",
		"hash":           stored.Hash,
		"revision":       float64(0),
	}
	if diff := cmp.Diff(want, meta); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if string(raw.Event.Data) != string(evs[0].Data) {
		t.Errorf("data = %s, want the payload unchanged", raw.Event.Data)
	}
}

func readOne(tb testing.TB, s domain.EventStore, stream string) domain.Event {
	tb.Helper()
	for e, err := range s.ReadStream(ctxFor(tb, 10*time.Second), stream, 0) {
		if err != nil {
			tb.Fatal(err)
		}
		return e
	}
	tb.Fatalf("stream %q is empty", stream)
	return domain.Event{}
}

func TestOversizedAppendIsInvalid(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	stream := storetest.StreamName("big")
	big := func() []domain.NewEvent {
		evs := storetest.Events(2, 20)
		evs[0].Data = []byte(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("a", 600<<10)))
		evs[1].Data = evs[0].Data
		return evs
	}
	t.Run("refused_before_sending", func(t *testing.T) {
		s := open(t, fast(srv.URL()))
		_, err := s.Append(ctxFor(t, 10*time.Second), stream, domain.Any(), big())
		if !errors.Is(err, domain.ErrInvalidAppend) {
			t.Fatalf("err = %v, want ErrInvalidAppend", err)
		}
	})
	t.Run("refused_by_the_server", func(t *testing.T) {
		cfg := fast(srv.URL())
		cfg.MaxAppendSize = -1
		s := open(t, cfg)
		_, err := s.Append(ctxFor(t, 10*time.Second), stream, domain.Any(), big())
		if !errors.Is(err, domain.ErrInvalidAppend) {
			t.Fatalf("err = %v, want ErrInvalidAppend", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  esdb.Config
		ok   bool
	}{
		{"url_is_enough", esdb.Config{URL: "esdb://localhost:2113?tls=false"}, true},
		{"cluster_url_is_valid", esdb.Config{URL: "esdb://a:2113,b:2113,c:2113?tls=false"}, true},
		{"missing_url_is_rejected", esdb.Config{}, false},
		{"bad_scheme_is_rejected", esdb.Config{URL: "http://localhost:2113"}, false},
		{"negative_page_size_is_rejected", esdb.Config{URL: "esdb://localhost:2113", PageSize: -1}, false},
		{"inverted_backoff_is_rejected", esdb.Config{URL: "esdb://localhost:2113", RetryMin: time.Second, RetryMax: time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%t", err, tt.ok)
			}
			if _, err := esdb.Open(tt.cfg); (err == nil) != tt.ok {
				t.Fatalf("Open() = %v, want ok=%t", err, tt.ok)
			}
		})
	}
}

// Two ledger nodes on one EventStoreDB: what one appends, the other's
// subscription delivers, at the very position the append returned, so that
// a read with min_position on the second node waits for exactly that event.
func TestTwoStoresShareTheLog(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	a, b := open(t, fast(srv.URL())), open(t, fast(srv.URL()))
	stream := storetest.StreamName("two-nodes")
	want := map[domain.Position]string{} // append result → id of its last event
	exp := domain.NoStream()
	for i := range 6 {
		evs := storetest.Events(1+i%3, 40)
		res, err := a.Append(ctxFor(t, 10*time.Second), stream, exp, evs)
		if err != nil {
			t.Fatal(err)
		}
		want[res.Position] = evs[len(evs)-1].ID
		exp = domain.Exact(res.Revision)
	}
	ctx, cancel := context.WithCancel(ctxFor(t, 30*time.Second))
	defer cancel()
	found := 0
	for e, err := range b.Subscribe(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := want[e.Position]; ok {
			if e.ID != id {
				t.Errorf("event at %s is %s, want %s (the last event of the append)", e.Position, e.ID, id)
			}
			found++
			if found == len(want) {
				break
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of %d append positions in the other store's subscription", found, len(want))
	}
}

// A ledger copied from another store (ledger migrate) keeps its hashes: the
// chain hash covers the envelope and data, never the position, and the
// copy gives every event its original RecordedAt and revision. Copying
// again stores nothing new.
func TestCopiedEventsKeepTheirHashes(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("migrated")

	// The source ledger: events sealed the way any store seals them.
	var source []domain.Event
	prev := ""
	for i, ne := range storetest.Events(7, 60) {
		e := domain.Event{
			ID: ne.ID, Type: ne.Type, Stream: stream, Revision: uint64(i), Data: ne.Data,
			OccurredAt: ne.OccurredAt, RecordedAt: time.Date(2025, 6, 1, 8, 0, i, 1000*i, time.UTC),
			Actor: ne.Actor, CorrelationID: ne.CorrelationID, CausationID: ne.CausationID,
		}
		domain.Seal(prev, &e)
		prev = e.Hash
		source = append(source, e)
	}
	copyAll := func() {
		// In batches of up to three events, each expecting the revision
		// before it, as a migration resuming anywhere would.
		for i := 0; i < len(source); i += 3 {
			batch := source[i:min(i+3, len(source))]
			var evs []domain.NewEvent
			for _, e := range batch {
				evs = append(evs, domain.NewEvent{
					ID: e.ID, Type: e.Type, Data: e.Data, OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt,
					Actor: e.Actor, CorrelationID: e.CorrelationID, CausationID: e.CausationID,
				})
			}
			exp := domain.NoStream()
			if i > 0 {
				exp = domain.Exact(uint64(i - 1))
			}
			if _, err := s.Append(ctxFor(t, 10*time.Second), stream, exp, evs); err != nil {
				t.Fatalf("copy batch at %d: %v", i, err)
			}
		}
	}
	copyAll()
	copyAll() // resumed from the start: idempotent

	var got []string
	for e, err := range s.ReadStream(ctxFor(t, 10*time.Second), stream, 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Hash)
	}
	var want []string
	for _, e := range source {
		want = append(want, e.Hash)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hashes after copying twice (-source +copy):\n%s", diff)
	}
}

func TestSystemEventsNeverReachTheDomain(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{}) // $all starts with system events
	s := open(t, fast(srv.URL()))
	stream := storetest.StreamName("sys")
	for range 3 {
		appendN(t, s, stream, 2)
		srv.AppendSystemEvent("$stats-127.0.0.1:2113", "$statsCollected")
		srv.AppendSystemEvent("$$"+stream, "$metadata")
	}
	n := 0
	for e, err := range s.ReadAll(ctxFor(t, 10*time.Second), domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Stream, "$") || strings.HasPrefix(e.Type, "$") {
			t.Errorf("ReadAll yielded system event %s of %s", e.Type, e.Stream)
		}
		n++
	}
	if n != 6 {
		t.Errorf("ReadAll yielded %d events, want the 6 appended", n)
	}
	if got := subscribeIDs(t, ctxFor(t, 10*time.Second), s, stream, 6, nil); len(got) != 6 {
		t.Errorf("Subscribe delivered %d events, want 6", len(got))
	}
}

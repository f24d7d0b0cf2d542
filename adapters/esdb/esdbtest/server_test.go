package esdbtest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"perfledger/adapters/esdb/esdbtest"
)

// These tests drive the server with the official client, unmodified: they
// are the evidence that the protocol is spoken well enough.

func newClient(tb testing.TB, url string) *esdb.Client {
	tb.Helper()
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		tb.Fatal(err)
	}
	conf.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(conf)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxFor(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func events(types ...string) []esdb.EventData {
	out := make([]esdb.EventData, len(types))
	for i, t := range types {
		out[i] = esdb.EventData{EventID: uuid.New(), EventType: t, ContentType: esdb.ContentTypeJson, Data: []byte(`{"i":1}`), Metadata: []byte(`{"m":true}`)}
	}
	return out
}

func drain(rs *esdb.ReadStream, err error) ([]*esdb.ResolvedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func TestAppendAndRead(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)

	evs := events("A", "B", "C")
	res, err := c.AppendToStream(ctx, "orders-1", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, evs...)
	if err != nil {
		t.Fatal(err)
	}
	if res.NextExpectedVersion != 2 {
		t.Errorf("next expected version = %d, want 2", res.NextExpectedVersion)
	}

	t.Run("stream_read_returns_events_with_created_and_positions", func(t *testing.T) {
		got, err := drain(c.ReadStream(ctx, "orders-1", esdb.ReadStreamOptions{}, 100))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("got %d events, want 3", len(got))
		}
		var last esdb.Position
		for i, ev := range got {
			e := ev.Event
			if e.EventID != evs[i].EventID || e.EventType != evs[i].EventType || e.EventNumber != uint64(i) {
				t.Errorf("event %d = %v %s #%d, want %v %s #%d", i, e.EventID, e.EventType, e.EventNumber, evs[i].EventID, evs[i].EventType, i)
			}
			if string(e.UserMetadata) != `{"m":true}` || string(e.Data) != `{"i":1}` {
				t.Errorf("event %d data/metadata = %s / %s", i, e.Data, e.UserMetadata)
			}
			if time.Since(e.CreatedDate) > time.Minute || e.CreatedDate.After(time.Now().Add(time.Second)) {
				t.Errorf("event %d created = %v, want about now", i, e.CreatedDate)
			}
			if after := e.Position.Commit > last.Commit || e.Position.Commit == last.Commit && e.Position.Prepare > last.Prepare; i > 0 && !after {
				t.Errorf("event %d position %v not after %v", i, e.Position, last)
			}
			if i > 0 && e.Position.Prepare == last.Prepare+1 {
				t.Errorf("positions are contiguous (%v after %v): they must look like byte offsets", e.Position, last)
			}
			last = e.Position
		}
		if res.CommitPosition != last.Commit || res.PreparePosition != last.Prepare {
			t.Errorf("append result position %d/%d, want the last event's %v", res.CommitPosition, res.PreparePosition, last)
		}
	})

	t.Run("backward_read_from_end_returns_the_last_event", func(t *testing.T) {
		got, err := drain(c.ReadStream(ctx, "orders-1", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Event.EventNumber != 2 {
			t.Fatalf("got %d events, want the one at revision 2", len(got))
		}
	})

	t.Run("unknown_stream_is_not_found", func(t *testing.T) {
		_, err := drain(c.ReadStream(ctx, "nope", esdb.ReadStreamOptions{}, 10))
		if code(err) != esdb.ErrorCodeResourceNotFound {
			t.Fatalf("err = %v, want resource not found", err)
		}
	})

	t.Run("all_holds_system_events_before_user_events", func(t *testing.T) {
		got, err := drain(c.ReadAll(ctx, esdb.ReadAllOptions{}, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < 4 || !strings.HasPrefix(got[0].Event.EventType, "$") {
			t.Fatalf("$all starts with %d events, first %q: want system events first", len(got), got[0].Event.EventType)
		}
		from := got[len(got)-2].Event.Position
		again, err := drain(c.ReadAll(ctx, esdb.ReadAllOptions{From: from}, 10))
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 2 || again[0].Event.Position != from {
			t.Fatalf("read from %v gave %d events: want 2, the first at that position (inclusive)", from, len(again))
		}
	})
}

func TestExpectedRevisions(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)
	first := events("A", "B")
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, first...); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		expected esdb.ExpectedRevision
		evs      []esdb.EventData
		wantErr  bool
		wantNext uint64
	}{
		{"no_stream_on_existing_stream_is_rejected", esdb.NoStream{}, events("X"), true, 0},
		{"stale_revision_is_rejected", esdb.Revision(0), events("X"), true, 0},
		{"same_ids_at_same_revisions_are_idempotent", esdb.NoStream{}, first, false, 1},
		{"same_ids_with_any_are_idempotent", esdb.Any{}, first, false, 1},
		{"current_revision_appends", esdb.Revision(1), events("C"), false, 2},
		{"stream_exists_appends", esdb.StreamExists{}, events("D"), false, 3},
		{"any_appends", esdb.Any{}, events("E"), false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: tt.expected}, tt.evs...)
			if tt.wantErr {
				if code(err) != esdb.ErrorCodeWrongExpectedVersion {
					t.Fatalf("err = %v, want wrong expected version", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.NextExpectedVersion != tt.wantNext {
				t.Errorf("next expected version = %d, want %d", res.NextExpectedVersion, tt.wantNext)
			}
		})
	}
	got, err := drain(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{}, 100))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("stream holds %d events, want 5 (idempotent appends wrote nothing)", len(got))
	}
}

func TestAppendSizeLimit(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{MaxAppendSize: 1000})
	c := newClient(t, srv.URL())
	big := esdb.EventData{EventID: uuid.New(), EventType: "Big", Data: make([]byte, 2000)}
	_, err := c.AppendToStream(ctxFor(t), "s", esdb.AppendToStreamOptions{}, big)
	if err == nil {
		t.Fatal("append over the limit succeeded")
	}
}

func TestDeleteAndTombstone(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)
	for _, s := range []string{"soft", "hard"} {
		if _, err := c.AppendToStream(ctx, s, esdb.AppendToStreamOptions{}, events("A", "B")...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteStream(ctx, "soft", esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TombstoneStream(ctx, "hard", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("soft_deleted_stream_is_not_found", func(t *testing.T) {
		_, err := drain(c.ReadStream(ctx, "soft", esdb.ReadStreamOptions{}, 10))
		if code(err) != esdb.ErrorCodeResourceNotFound {
			t.Fatalf("err = %v, want not found", err)
		}
	})
	t.Run("soft_deleted_stream_continues_numbering", func(t *testing.T) {
		res, err := c.AppendToStream(ctx, "soft", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events("C")...)
		if err != nil {
			t.Fatal(err)
		}
		if res.NextExpectedVersion != 2 {
			t.Errorf("revision = %d, want 2", res.NextExpectedVersion)
		}
	})
	t.Run("tombstoned_stream_is_deleted_for_reads_and_appends", func(t *testing.T) {
		_, err := drain(c.ReadStream(ctx, "hard", esdb.ReadStreamOptions{}, 10))
		if code(err) != esdb.ErrorCodeStreamDeleted {
			t.Errorf("read err = %v, want stream deleted", err)
		}
		_, err = c.AppendToStream(ctx, "hard", esdb.AppendToStreamOptions{}, events("C")...)
		if code(err) != esdb.ErrorCodeStreamDeleted {
			t.Errorf("append err = %v, want stream deleted", err)
		}
	})
}

// collect receives from sub until it has n events (system events skipped
// by the caller's filter) or fails.
// With n = 0 it returns after the next message whatever it is.
func collect(t *testing.T, sub *esdb.Subscription, n int) (evs []*esdb.RecordedEvent, checkpoints, caughtUp int) {
	t.Helper()
	for first := true; first || len(evs) < n; first = false {
		e := sub.Recv()
		switch {
		case e.EventAppeared != nil:
			evs = append(evs, e.EventAppeared.Event)
		case e.CheckPointReached != nil:
			checkpoints++
		case e.CaughtUp != nil:
			caughtUp++
		case e.SubscriptionDropped != nil:
			t.Fatalf("dropped after %d events: %v", len(evs), e.SubscriptionDropped.Error)
		}
	}
	return evs, checkpoints, caughtUp
}

func TestFilteredSubscription(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)
	for i := 0; i < 50; i++ {
		if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, events("Old")...); err != nil {
			t.Fatal(err)
		}
		srv.AppendSystemEvent("$stats", "$statsCollected")
	}
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: esdb.ExcludeSystemEventsFilter(), MaxSearchWindow: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	got, checkpoints, caughtUp := collect(t, sub, 50)
	for caughtUp == 0 { // the end of the catch-up comes after the last event
		more, cps, cu := collect(t, sub, 0)
		got, checkpoints, caughtUp = append(got, more...), checkpoints+cps, caughtUp+cu
		if len(more) > 0 {
			t.Fatalf("%d events after the 50 stored", len(more))
		}
	}
	srv.AppendSystemEvent("$stats", "$statsCollected")
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, events("New")...); err != nil {
		t.Fatal(err)
	}
	live, _, cu := collect(t, sub, 1)
	got, caughtUp = append(got, live...), caughtUp+cu
	var types []string
	for _, e := range got {
		types = append(types, e.EventType)
	}
	want := append(strings.Split(strings.Repeat("Old,", 50), ",")[:50], "New")
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("types (-want +got):\n%s", diff)
	}
	if checkpoints == 0 {
		t.Error("no checkpoint while scanning 100 events with a window of 10")
	}
	if caughtUp != 1 {
		t.Errorf("caught-up sent %d times, want 1", caughtUp)
	}
}

func TestSubscriptionFromPositionIsExclusive(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)
	evs := events("A", "B", "C")
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
	all, err := drain(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{}, 10))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: all[0].Event.Position, Filter: esdb.ExcludeSystemEventsFilter()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Close() }()
	got, _, _ := collect(t, sub, 2)
	if got[0].EventID != evs[1].EventID || got[1].EventID != evs[2].EventID {
		t.Errorf("got %v, %v; want the events after the first", got[0].EventID, got[1].EventID)
	}
}

func TestFaults(t *testing.T) {
	t.Run("drop_ends_open_subscriptions", func(t *testing.T) {
		srv := esdbtest.New(t, esdbtest.Config{})
		c := newClient(t, srv.URL())
		ctx := ctxFor(t)
		sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: esdb.End{}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Close() }()
		srv.DropSubscriptions()
		for {
			e := sub.Recv()
			if e.SubscriptionDropped != nil {
				break
			}
		}
	})
	t.Run("restart_keeps_data_and_port", func(t *testing.T) {
		srv := esdbtest.New(t, esdbtest.Config{})
		c := newClient(t, srv.URL())
		ctx := ctxFor(t)
		if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, events("A")...); err != nil {
			t.Fatal(err)
		}
		addr := srv.Addr()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		if srv.Addr() != addr {
			t.Errorf("address changed from %s to %s", addr, srv.Addr())
		}
		c2 := newClient(t, srv.URL())
		got, err := drain(c2.ReadStream(ctx, "s", esdb.ReadStreamOptions{}, 10))
		if err != nil || len(got) != 1 {
			t.Fatalf("after restart: %d events, err %v; want 1", len(got), err)
		}
	})
	t.Run("stopped_server_refuses_connections", func(t *testing.T) {
		srv := esdbtest.New(t, esdbtest.Config{})
		srv.Stop()
		c := newClient(t, srv.URL())
		_, err := c.AppendToStream(ctxFor(t), "s", esdb.AppendToStreamOptions{}, events("A")...)
		if err == nil {
			t.Fatal("append to a stopped server succeeded")
		}
	})
	t.Run("discovery_through_gossip_finds_the_node", func(t *testing.T) {
		srv := esdbtest.New(t, esdbtest.Config{})
		c := newClient(t, strings.Replace(srv.URL(), "esdb://", "esdb+discover://", 1))
		if _, err := c.AppendToStream(ctxFor(t), "s", esdb.AppendToStreamOptions{}, events("A")...); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStreamSubscriptionAndBackwardAllRead(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	c := newClient(t, srv.URL())
	ctx := ctxFor(t)
	evs := events("A", "B", "C")
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "other", esdb.AppendToStreamOptions{}, events("X")...); err != nil {
		t.Fatal(err)
	}

	t.Run("stream_subscription_after_a_revision_gets_the_later_events_then_live_ones", func(t *testing.T) {
		sub, err := c.SubscribeToStream(ctx, "s", esdb.SubscribeToStreamOptions{From: esdb.Revision(0)})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Close() }()
		got, _, _ := collect(t, sub, 2)
		live := events("D")
		if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(2)}, live...); err != nil {
			t.Fatal(err)
		}
		more, _, _ := collect(t, sub, 1)
		got = append(got, more...)
		var ids []uuid.UUID
		for _, e := range got {
			ids = append(ids, e.EventID)
		}
		want := []uuid.UUID{evs[1].EventID, evs[2].EventID, live[0].EventID}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("ids (-want +got):\n%s", diff)
		}
	})

	t.Run("backward_all_read_returns_newest_first", func(t *testing.T) {
		got, err := drain(c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Event.StreamID != "s" || got[0].Event.EventType != "D" || got[1].Event.StreamID != "other" {
			t.Fatalf("got %d events starting with %s/%s: want D of s then X of other", len(got), got[0].Event.StreamID, got[0].Event.EventType)
		}
		before, err := drain(c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: got[0].Event.Position}, 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 || before[0].Event.EventID != got[1].Event.EventID {
			t.Fatalf("backward read from a position did not start just before it")
		}
	})
}

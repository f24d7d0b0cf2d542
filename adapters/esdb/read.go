package esdb

import (
	"context"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"perfledger/domain"
)

// page runs one read request and hands visit every event it returns (system
// events included) in order. It returns how many events the server sent.
// A stream that does not exist has no events. An error of visit ends the
// page and is returned as is.
func (s *Store) page(ctx context.Context, op string, open func(context.Context, *client.Client) (*client.ReadStream, error), visit func(*client.RecordedEvent) error) (int, error) {
	for attempt := 0; ; attempt++ {
		n, err := s.pageOnce(ctx, open, visit)
		if n == 0 && attempt == 0 && broken(err) && !ended(ctx) {
			// A broken connection shows on the first receive; the client
			// was replaced.
			continue
		}
		var de *decodeError
		if err != nil && !errors.Is(err, errStop) && !errors.As(err, &de) {
			err = translate(op, err)
		}
		return n, err
	}
}

func (s *Store) pageOnce(ctx context.Context, open func(context.Context, *client.Client) (*client.ReadStream, error), visit func(*client.RecordedEvent) error) (int, error) {
	rs, cn, err := call(ctx, s, open, func(rs *client.ReadStream) { rs.Close() })
	if err != nil {
		return 0, err
	}
	defer s.release(cn)
	defer rs.Close()
	n := 0
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if hasCode(err, client.ErrorCodeResourceNotFound) {
			return n, nil
		}
		if err != nil {
			if ended(ctx) {
				return n, ctxErr(ctx, s)
			}
			if broken(err) {
				s.renew(cn)
			}
			return n, err
		}
		n++
		if err := visit(ev.OriginalEvent()); err != nil {
			return n, err
		}
	}
}

// ReadStream implements domain.EventStore: the stream's events from
// revision from, read in pages of Config.PageSize.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		ctx, cancel := s.callCtx(ctx)
		defer cancel()
		next := from
		s.readPages(ctx, "read stream", yield, func(ctx context.Context, c *client.Client) (*client.ReadStream, error) {
			return c.ReadStream(ctx, stream, client.ReadStreamOptions{From: client.Revision(next)}, uint64(s.cfg.PageSize))
		}, func(r *client.RecordedEvent) bool {
			next = r.EventNumber + 1
			return true
		})
	}
}

// ReadAll implements domain.EventStore: $all after after, without system
// events, read in pages of Config.PageSize.
func (s *Store) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		ctx, cancel := s.callCtx(ctx)
		defer cancel()
		last := after
		s.readPages(ctx, "read $all", yield, func(ctx context.Context, c *client.Client) (*client.ReadStream, error) {
			var from client.AllPosition = client.Start{}
			if !last.IsZero() {
				// Inclusive: the event at last comes again and is skipped.
				from = client.Position{Commit: last.Commit, Prepare: last.Prepare}
			}
			return c.ReadAll(ctx, client.ReadAllOptions{From: from}, uint64(s.cfg.PageSize))
		}, func(r *client.RecordedEvent) bool {
			pos := domain.Position{Commit: r.Position.Commit, Prepare: r.Position.Prepare}
			if !last.Less(pos) {
				return false
			}
			last = pos
			return true
		})
	}
}

// readPages reads pages of Config.PageSize with open (called again for
// every page, so it reads from where the last page ended) and yields each
// new event that is not a system event. fresh tells whether an event is new
// (false: already yielded, skip it) and advances the reader's position. It
// yields the first error and stops.
func (s *Store) readPages(ctx context.Context, op string, yield func(domain.Event, error) bool,
	open func(context.Context, *client.Client) (*client.ReadStream, error), fresh func(*client.RecordedEvent) bool) {
	for {
		n, err := s.page(ctx, op, open, func(r *client.RecordedEvent) error {
			if !fresh(r) || isSystem(r.StreamID, r.EventType) {
				return nil
			}
			e, err := decode(r)
			if err != nil {
				return err
			}
			if !yield(e, nil) {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return
		}
		if err != nil {
			yield(domain.Event{}, err)
			return
		}
		if n < s.cfg.PageSize {
			return
		}
	}
}

// Subscribe implements domain.EventStore with a catch-up subscription to
// $all from after, filtered on the server to exclude system events. When
// the subscription drops (the node went away, the connection broke), it
// resubscribes from the last event delivered, with exponential backoff
// between Config.RetryMin and Config.RetryMax, so nothing is skipped or
// delivered twice. It ends when ctx ends (yielding ctx.Err()), when the Store
// is closed (yielding domain.ErrStoreClosed), at an event it cannot decode,
// or at an error resubscribing cannot cure (access denied, bad request).
func (s *Store) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		ctx, cancel := s.callCtx(ctx)
		defer cancel()
		last := after
		backoff := s.cfg.RetryMin
		for {
			progressed, err := s.subscribeOnce(ctx, &last, yield)
			if errors.Is(err, errStop) {
				return
			}
			if ended(ctx) {
				yield(domain.Event{}, ctxErr(ctx, s))
				return
			}
			if permanent(err) {
				yield(domain.Event{}, err)
				return
			}
			if progressed {
				backoff = s.cfg.RetryMin
			}
			// Jitter of ±20% so that many nodes do not resubscribe at once.
			d := backoff + time.Duration((rand.Float64()*0.4-0.2)*float64(backoff)) //nolint:gosec // jitter, not security
			if l := s.cfg.Logger; l != nil {
				l.Warn("eventstoredb subscription dropped; resubscribing", "after", last.String(), "in", d.Round(time.Millisecond), "err", err)
			}
			if sleep(ctx, d) != nil {
				yield(domain.Event{}, ctxErr(ctx, s))
				return
			}
			backoff = min(2*backoff, s.cfg.RetryMax)
		}
	}
}

// permanent reports a subscription error that resubscribing cannot cure.
func permanent(err error) bool {
	var de *decodeError
	if errors.As(err, &de) || errors.Is(err, domain.ErrStoreClosed) {
		return true
	}
	for _, c := range []client.ErrorCode{client.ErrorCodeAccessDenied, client.ErrorCodeUnauthenticated, client.ErrorCodeUnsupportedFeature} {
		if hasCode(err, c) {
			return true
		}
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.Unimplemented:
			return true
		}
	}
	return false
}

// subscribeOnce runs one subscription until it drops, advancing *last past
// every event it sees. progressed reports that it delivered an event or
// caught up.
func (s *Store) subscribeOnce(ctx context.Context, last *domain.Position, yield func(domain.Event, error) bool) (progressed bool, err error) {
	var from client.AllPosition = client.Start{}
	if !last.IsZero() {
		from = client.Position{Commit: last.Commit, Prepare: last.Prepare} // exclusive
	}
	sub, cn, err := call(ctx, s, func(ctx context.Context, c *client.Client) (*client.Subscription, error) {
		return c.SubscribeToAll(ctx, client.SubscribeToAllOptions{
			From:   from,
			Filter: client.ExcludeSystemEventsFilter(),
		})
	}, func(sub *client.Subscription) { _ = sub.Close() })
	if err != nil {
		return false, translate("subscribe", err)
	}
	defer s.release(cn)
	defer func() { _ = sub.Close() }()
	for {
		msg := sub.Recv()
		switch {
		case msg.EventAppeared != nil:
			r := msg.EventAppeared.OriginalEvent()
			pos := domain.Position{Commit: r.Position.Commit, Prepare: r.Position.Prepare}
			if !last.Less(pos) {
				continue // already delivered
			}
			if isSystem(r.StreamID, r.EventType) {
				*last = pos
				continue
			}
			e, err := decode(r)
			if err != nil {
				return progressed, err
			}
			*last = pos
			progressed = true
			if !yield(e, nil) {
				return progressed, errStop
			}
		case msg.CaughtUp != nil:
			progressed = true
		case msg.SubscriptionDropped != nil:
			err := msg.SubscriptionDropped.Error
			if broken(err) && !ended(ctx) {
				s.renew(cn)
			}
			return progressed, translate("subscription", err)
		}
	}
}

// Ping checks that the server answers a read, within ctx: for start-up
// checks and readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	_, err := s.page(ctx, "ping", func(ctx context.Context, c *client.Client) (*client.ReadStream, error) {
		return c.ReadAll(ctx, client.ReadAllOptions{Direction: client.Backwards, From: client.End{}}, 1)
	}, func(*client.RecordedEvent) error { return nil })
	return err
}

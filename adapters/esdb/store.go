// Package esdb is the EventStoreDB event store: domain.EventStore over the
// official Go client (github.com/EventStore/EventStore-Client-Go/v4).
//
// Mapping:
//   - a domain stream is an EventStoreDB stream of the same name, a domain
//     revision its event number, a domain.Position its (commit, prepare)
//     position in $all;
//   - the event id (deterministic from the command id) is the EventStoreDB
//     event id, so a retried append is recognised;
//   - the envelope (occurred_at, recorded_at, actor, correlation_id,
//     causation_id, prev_hash, hash, revision) is the event's metadata, as
//     JSON; the data is the payload, unchanged;
//   - the hash chain is computed here: an append reads the event it links to
//     and then appends with that exact revision, whatever the caller's
//     expectation (an Any append retries when it loses the race);
//   - system events ($-prefixed streams or types) never reach the domain;
//     subscriptions filter them on the server.
//
// The client closes itself for good after a failed discovery; the Store then
// replaces it. The client ignores contexts while discovering; every Store
// call is bounded by its context anyway.
package esdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"perfledger/domain"
)

// Store is a domain.EventStore on EventStoreDB. It is safe for concurrent
// use. Close it to release the connection.
type Store struct {
	cfg  Config
	conf client.Configuration // parsed URL, the template of every client

	ctx    context.Context // cancelled by Close: ends every call
	cancel context.CancelFunc

	mu     sync.Mutex
	conn   *conn // the client calls use; nil: make one
	closed bool
}

var _ domain.EventStore = (*Store)(nil)

// conn is a client and the calls using it. The client panics when it is
// closed while a call is handing it a request, so a retired client is
// closed only once its last call has ended.
type conn struct {
	c        *client.Client
	inflight int  // guarded by Store.mu
	retired  bool // guarded by Store.mu
}

// Open returns a Store for cfg. It does no I/O: the first call connects.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conf, err := client.ParseConnectionString(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("esdb config: URL: %w", err)
	}
	conf.Logger = clientLogger(cfg.Logger)
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{cfg: cfg, conf: *conf, ctx: ctx, cancel: cancel}, nil
}

// Close ends every call in progress and releases the connection once they
// have returned. Calls after Close return domain.ErrStoreClosed. Close does
// not wait.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.cancel()
	if s.conn != nil {
		s.retireLocked(s.conn)
	}
	return nil
}

// acquire returns the current client, creating one when there is none, for
// one call; release it after the call.
func (s *Store) acquire() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, domain.ErrStoreClosed
	}
	if s.conn == nil {
		conf := s.conf
		c, err := client.NewClient(&conf)
		if err != nil {
			return nil, fmt.Errorf("esdb: new client: %w", err)
		}
		s.conn = &conn{c: c}
	}
	s.conn.inflight++
	return s.conn, nil
}

func (s *Store) release(cn *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cn.inflight--
	if cn.retired && cn.inflight == 0 {
		go func() { _ = cn.c.Close() }()
	}
}

// renew retires cn, if it is still the current client, so that the next
// call makes a new one. The client is replaced after a failed discovery
// (it has closed itself for good) and after a broken connection (v4 does
// not notice a broken connection on reads and subscriptions, and its gRPC
// connection may wait minutes before redialling).
func (s *Store) renew(cn *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == cn {
		s.retireLocked(cn)
	}
}

func (s *Store) retireLocked(cn *conn) {
	if s.conn == cn {
		s.conn = nil
	}
	if !cn.retired {
		cn.retired = true
		if cn.inflight == 0 {
			go func() { _ = cn.c.Close() }()
		}
	}
}

// callCtx returns a context ended by ctx or by Close.
func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return cctx, func() { stop(); cancel() }
}

// call runs op on the current client in its own goroutine, so that ctx
// bounds it even while the client discovers the node (which ignores ctx).
// When ctx ends first, call returns ctx's error at once and release (if not
// nil) receives op's result once it comes.
//
// A client that has closed itself or whose connection broke is replaced and
// op retried once: every request of the Store is safe to repeat (reads, and
// appends with an exact expected revision, which the server recognises).
//
// On success the client stays acquired for the caller, who must release it
// when finished with the result (a stream still receiving), and may renew
// it when the result reports a broken connection.
func call[T any](ctx context.Context, s *Store, op func(context.Context, *client.Client) (T, error), release func(T)) (T, *conn, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		cn, err := s.acquire()
		if err != nil {
			return zero, nil, err
		}
		type result struct {
			v   T
			err error
		}
		ch := make(chan result, 1)
		go func() {
			v, err := op(ctx, cn.c)
			ch <- result{v, err}
		}()
		select {
		case r := <-ch:
			if r.err == nil {
				return r.v, cn, nil
			}
			s.release(cn)
			if ended(ctx) {
				return zero, nil, ctxErr(ctx, s)
			}
			if broken(r.err) {
				s.renew(cn)
				if attempt == 0 {
					continue
				}
			}
			return zero, nil, r.err
		case <-ctx.Done():
			go func() {
				r := <-ch
				if r.err == nil && release != nil {
					release(r.v)
				}
				s.release(cn)
			}()
			return zero, nil, ctxErr(ctx, s)
		}
	}
}

// broken reports an error after which the client should be replaced: it
// closed itself, or the connection is unavailable.
func broken(err error) bool {
	if hasCode(err, client.ErrorCodeConnectionClosed) || hasCode(err, client.ErrorUnavailable) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// ended reports whether ctx has ended, counting a deadline already past
// whose timer has not fired yet: gRPC may report the deadline first.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// ctxErr is the error of a call whose context ended: ErrStoreClosed when
// Close ended it.
func ctxErr(ctx context.Context, s *Store) error {
	if s.ctx.Err() != nil {
		return domain.ErrStoreClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// hasCode reports whether err is a client error with that code.
func hasCode(err error, code client.ErrorCode) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code() == code
}

// translate turns a client error into the error the domain sees, once.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, domain.ErrStoreClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if st, ok := status.FromError(err); ok && op == "append" && st.Code() == codes.InvalidArgument {
		// The server refuses the request itself, e.g. over its maximum
		// append size.
		return fmt.Errorf("%w: esdb %s: %s", domain.ErrInvalidAppend, op, st.Message())
	}
	return fmt.Errorf("esdb %s: %w", op, err)
}

// Package esdbtest is an in-process server that speaks enough of the
// EventStoreDB gRPC protocol for the official Go client
// (github.com/EventStore/EventStore-Client-Go/v4) to run against it
// unmodified. It exists so that the EventStoreDB adapter is tested on every
// machine, without a real server: CI tests against this server.
//
// It keeps EventStoreDB's observable semantics where the adapter depends on
// them:
//   - expected-revision checks (any, no stream, stream exists, exact) with
//     WrongExpectedVersion answers carrying the current revision;
//   - idempotent appends: re-sending the same event ids at the same
//     revisions succeeds without writing anything (with Any, when the ids are
//     found in the stream in order);
//   - positions that are opaque byte offsets, not contiguous: the events of
//     one append share a commit position and have increasing prepare
//     positions;
//   - system events ($-prefixed streams and types) in $all: some are written
//     at start, deletes write $metadata events, and tests can add more;
//   - a "created" system metadata in .NET ticks on every event;
//   - reads of a stream and of $all, forwards and backwards, with
//     stream-not-found answers; catch-up subscriptions to a stream or to $all
//     (confirmation, catch-up, caught-up, live) with server-side filters on
//     the event type or stream name (prefixes or regular expression) and
//     checkpoints while scanning;
//   - soft delete and tombstone, with the stream-deleted exception;
//   - the maximum append size (1 MiB by default);
//   - server features and gossip (a single leader node).
//
// It does NOT emulate: persistent subscriptions, projections, users and ACLs
// (no authentication is checked), TLS, batch appends, clustering and leader
// elections (gossip always reports one alive leader), stream metadata other
// than the truncate-before of a soft delete (max count, max age …),
// scavenging, link events and resolveLinkTos, transaction-log durability
// (everything is in memory; Restart keeps the data only because the Server
// value survives), and the fell-behind notification of slow live
// subscribers.
//
// Faults can be injected: Stop and Start (connections refused in between,
// data kept), Restart, Hang (TCP accepted but never answered), SetDelay
// (every call delayed), DropSubscriptions (every open subscription fails
// now) and SetDropAfter (every subscription fails after n events).
package esdbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Config configures a Server. The zero value is usable.
type Config struct {
	// Addr is the listen address; default "127.0.0.1:0" (a free port, kept
	// across Stop/Start).
	Addr string
	// Version is the server version reported by server features; default
	// "24.10.0". (The v4 client cannot parse pre-release versions such as
	// "25.1.0-rc.1".)
	Version string
	// MaxAppendSize is the largest append accepted, in bytes of data,
	// metadata and type; default 1 MiB like EventStoreDB.
	MaxAppendSize int
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if c.MaxAppendSize < 0 {
		return fmt.Errorf("esdbtest: MaxAppendSize %d is negative", c.MaxAppendSize)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Version == "" {
		c.Version = "24.10.0"
	}
	if c.MaxAppendSize == 0 {
		c.MaxAppendSize = 1 << 20
	}
	return c
}

// Server is an in-process EventStoreDB protocol server. Its methods are safe
// for concurrent use.
type Server struct {
	cfg Config

	// mu guards the data.
	mu      sync.Mutex
	log     []*record               // $all in position order
	streams map[string]*streamState // by name
	next    uint64                  // prepare position of the next record
	changed chan struct{}           // closed and replaced on every write
	drop    chan struct{}           // closed and replaced by DropSubscriptions

	dropAfter atomic.Int64 // > 0: subscriptions fail after that many events
	delay     atomic.Int64 // nanoseconds added to every call
	subCount  atomic.Int64 // subscriptions ever opened

	// life guards the listener state.
	life    sync.Mutex
	addr    string                 // fixed after the first Start
	addrV   atomic.Pointer[string] // addr, for handlers (no lock)
	grpcSrv *grpc.Server
	hang    net.Listener
	hangWG  sync.WaitGroup
	closed  bool
}

// New starts a server for a test and stops it when the test ends.
func New(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := Start(cfg)
	if err != nil {
		tb.Fatalf("esdbtest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a server listening on cfg.Addr. It holds a few system events
// already, as a real $all does.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg.withDefaults(),
		streams: make(map[string]*streamState),
		next:    1 << 10,
		changed: make(chan struct{}),
		drop:    make(chan struct{}),
	}
	s.addr = s.cfg.Addr
	for _, e := range []struct{ stream, typ string }{
		{"$users", "$User"},
		{"$user-admin", "$UserCreated"},
		{"$settings", "$settings"},
		{"$scavenges", "$scavengeIndexInitialized"},
	} {
		s.AppendSystemEvent(e.stream, e.typ)
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string {
	if a := s.addrV.Load(); a != nil {
		return *a
	}
	return s.cfg.Addr
}

// URL returns a connection string for the official client, with discovery
// bounded to one attempt of one second so that tests of failures stay fast.
func (s *Server) URL() string {
	return "esdb://" + s.Addr() + "?tls=false&maxDiscoverAttempts=1&gossipTimeout=1&discoveryInterval=10"
}

// Start serves (again) on the server's address, after Stop or Hang. The
// data is kept. Starting a running server does nothing.
func (s *Server) Start() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return errors.New("esdbtest: server closed")
	}
	if s.grpcSrv != nil {
		return nil
	}
	s.stopHangLocked()
	lis, err := listen(s.addr)
	if err != nil {
		return fmt.Errorf("esdbtest: listen %s: %w", s.addr, err)
	}
	s.addr = lis.Addr().String()
	addr := s.addr
	s.addrV.Store(&addr)
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(32<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.wait(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.wait(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
	api.RegisterStreamsServer(g, &streamsService{s: s})
	featuresapi.RegisterServerFeaturesServer(g, &featuresService{s: s})
	gossipapi.RegisterGossipServer(g, &gossipService{s: s})
	s.grpcSrv = g
	go func() { _ = g.Serve(lis) }()
	return nil
}

// listen binds addr, retrying briefly: a port just released may take a
// moment to be free again.
func listen(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var lis net.Listener
		if lis, err = net.Listen("tcp", addr); err == nil {
			return lis, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// Stop closes the listener and every connection: calls fail and new
// connections are refused until Start. The data is kept.
func (s *Server) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.grpcSrv != nil {
		s.grpcSrv.Stop()
		s.grpcSrv = nil
	}
	s.stopHangLocked()
}

// Restart stops and starts the server on the same address, keeping data.
func (s *Server) Restart() error {
	s.Stop()
	return s.Start()
}

// Hang stops serving the protocol but keeps accepting TCP connections that
// are never answered, like a wedged node, until Start or Stop.
func (s *Server) Hang() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return errors.New("esdbtest: server closed")
	}
	s.stopLocked()
	lis, err := listen(s.addr)
	if err != nil {
		return fmt.Errorf("esdbtest: listen %s: %w", s.addr, err)
	}
	s.hang = lis
	s.hangWG.Add(1)
	go func() {
		defer s.hangWG.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return nil
}

func (s *Server) stopHangLocked() {
	if s.hang != nil {
		_ = s.hang.Close()
		s.hangWG.Wait()
		s.hang = nil
	}
}

// Close stops the server for good.
func (s *Server) Close() {
	s.life.Lock()
	defer s.life.Unlock()
	s.stopLocked()
	s.closed = true
}

// SetDelay delays every call (and the start of every stream) by d.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

func (s *Server) wait(ctx context.Context) error {
	d := time.Duration(s.delay.Load())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DropSubscriptions makes every open subscription fail now (gRPC status
// Unavailable), as when a node goes away. Later subscriptions work.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	close(s.drop)
	s.drop = make(chan struct{})
	s.mu.Unlock()
}

// SetDropAfter makes every subscription opened from now on fail after it has
// sent n events (n <= 0: never).
func (s *Server) SetDropAfter(n int) { s.dropAfter.Store(int64(n)) }

// Subscriptions returns how many subscriptions were opened so far.
func (s *Server) Subscriptions() int { return int(s.subCount.Load()) }

// AppendSystemEvent writes one system event (stream and type should start
// with "$") to the log, as EventStoreDB does for statistics and settings.
func (s *Server) AppendSystemEvent(stream, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(stream)
	var id [16]byte
	n := len(s.log) + 1
	id[0], id[1], id[2], id[15] = byte(n>>16), byte(n>>8), byte(n), 0x5e
	id[6] = 0x40
	id[8] = 0x80
	s.writeLocked(st, stream, []proposed{{id: id, typ: typ, contentType: "application/json", data: []byte(`{}`)}})
}

// Len returns how many events (system events included) $all holds.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// proposed is an event of an append request.
type proposed struct {
	id          [16]byte
	typ         string
	contentType string
	data, meta  []byte
}

func (s *Server) stream(name string) *streamState {
	st := s.streams[name]
	if st == nil {
		st = &streamState{ids: make(map[[16]byte]int)}
		s.streams[name] = st
	}
	return st
}

// writeLocked appends evs to st (named name) and to $all. The events share
// a commit position (the first one's prepare position); each record takes
// room like a log record of its size, so positions are not contiguous.
func (s *Server) writeLocked(st *streamState, name string, evs []proposed) []*record {
	created := time.Now().UnixNano() / 100
	commit := s.next
	out := make([]*record, len(evs))
	for i, e := range evs {
		r := &record{
			id:          e.id,
			stream:      name,
			rev:         uint64(len(st.recs)),
			commit:      commit,
			prepare:     s.next,
			typ:         e.typ,
			contentType: e.contentType,
			created:     created,
			data:        e.data,
			meta:        e.meta,
		}
		r.resp = newEventResp(r, false)
		s.next += uint64(80 + 2*len(name) + 2*len(e.typ) + len(e.data) + len(e.meta))
		st.ids[e.id] = len(st.recs)
		st.recs = append(st.recs, r)
		s.log = append(s.log, r)
		out[i] = r
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return out
}

// featuresService answers the client's server-features probe.
type featuresService struct {
	featuresapi.UnimplementedServerFeaturesServer
	s *Server
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*featuresapi.SupportedMethods, error) {
	const streams = "event_store.client.streams.streams"
	m := &featuresapi.SupportedMethods{EventStoreServerVersion: f.s.cfg.Version}
	for _, name := range []string{"read", "append", "delete", "tombstone"} {
		m.Methods = append(m.Methods, &featuresapi.SupportedMethod{ServiceName: streams, MethodName: name})
	}
	m.Methods = append(m.Methods,
		&featuresapi.SupportedMethod{ServiceName: "event_store.client.gossip.gossip", MethodName: "read"},
		&featuresapi.SupportedMethod{ServiceName: "event_store.client.server_features.serverfeatures", MethodName: "getsupportedmethods"},
	)
	return m, nil
}

// gossipService reports a cluster of one alive leader: this server.
type gossipService struct {
	gossipapi.UnimplementedGossipServer
	s *Server
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossipapi.ClusterInfo, error) {
	host, port, err := net.SplitHostPort(g.s.Addr())
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	return &gossipapi.ClusterInfo{Members: []*gossipapi.MemberInfo{{
		InstanceId: &shared.UUID{Value: &shared.UUID_String_{String_: "00000000-0000-4000-8000-000000000001"}},
		TimeStamp:  time.Now().UnixNano() / 100,
		State:      gossipapi.MemberInfo_Leader,
		IsAlive:    true,
		HttpEndPoint: &gossipapi.EndPoint{
			Address: host,
			Port:    uint32(p),
		},
	}}}, nil
}

// Package httpapi serves the ledger over HTTP with chi: a route for every
// command and query, bearer-token authentication, the role rules of
// DOMAIN.md §7, one error renderer, idempotency keys, cursor pagination, CSV,
// an OpenAPI document generated from the route table, health and Prometheus
// metrics.
//
// Every route is declared once, in the route table (routes.go); the chi
// router, the OpenAPI document and the route × role tests are all derived
// from it.
package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"perfledger/domain"
	"perfledger/projections"
)

// Commands executes domain commands; *domain.Service implements it.
type Commands interface {
	Execute(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) (domain.Result, error)
}

// ReadModels gives access to the projections; *projections.Runner implements
// it. WaitFor returns once every projection has applied the event at pos.
type ReadModels interface {
	DB() *sql.DB
	Current(name string) projections.Projector
	Checkpoint(name string) (domain.Position, error)
	WaitFor(ctx context.Context, pos domain.Position) error
}

// EventLog reads the log: the whole of it in global order, or one stream;
// domain.EventStore implements it.
type EventLog interface {
	ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error]
	ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[domain.Event, error]
}

// Readiness reports whether the server may take traffic: nil when the
// projections have caught up with the log.
type Readiness interface {
	Ready(ctx context.Context) error
}

// ReadyFunc adapts a function to Readiness.
type ReadyFunc func(ctx context.Context) error

// Ready calls f.
func (f ReadyFunc) Ready(ctx context.Context) error { return f(ctx) }

var (
	_ Readiness = ReadyFunc(nil)
	_ LagSource = LagFunc(nil)
)

// Config is what New needs.
type Config struct {
	// Commands runs every write (required).
	Commands Commands
	// Org answers the organisation questions the role rules need (required):
	// which team a member is in, which teams are under a team.
	Org Org
	// ReadModels serves every read (required).
	ReadModels ReadModels
	// Keys decrypts personal data for the directory and member files
	// (required).
	Keys domain.KeyStore
	// DB holds the API's own tables: tokens and idempotency keys (required).
	// The caller opens it with its driver; the package issues plain SQL.
	DB *sql.DB
	// Tokens authenticates requests; nil builds one on DB.
	Tokens *Tokens
	// Evaluations computes what POST .../evaluations/{month}/finalize locks;
	// nil answers 503 there.
	Evaluations Evaluations
	// Log is the event log, read by GET /v1/audit/verify to recompute every
	// stream's hash chain and by the member history (required).
	Log EventLog
	// AsOf answers the read-model routes' as_of (a past recorded time) by
	// replaying the log into a private database; nil answers 503 to as_of.
	AsOf AsOf
	// AsOfWait bounds how long a request waits for its as-of read models
	// to be replayed; past it the request answers 503 with Retry-After while
	// the replay goes on (asking again later is answered from the cache).
	// 0 means DefaultAsOfWait.
	AsOfWait time.Duration
	// Ready answers /readyz; nil means always ready.
	Ready Readiness
	// Lags feeds the projection-lag gauge of /metrics; nil leaves it out.
	Lags LagSource
	// Logger receives refusals (403), internal errors and panics; nil means
	// slog.Default(). Tokens are never logged.
	Logger *slog.Logger
	// Clock stamps tokens, idempotency records and rate limits; nil means
	// domain.SystemClock.
	Clock domain.Clock
	// RateLimit is applied per principal; the zero value means
	// DefaultRateLimit. Rate < 0 disables it.
	RateLimit RateLimit
	// WaitTimeout bounds how long a read waits for min_position; 0 means
	// DefaultWaitTimeout.
	WaitTimeout time.Duration
}

// Defaults of Config.
var (
	DefaultRateLimit   = RateLimit{Rate: 2000, Burst: 4000}
	DefaultWaitTimeout = 5 * time.Second
	DefaultAsOfWait    = 30 * time.Second
)

// Validate reports the first missing or wrong field.
func (c Config) Validate() error {
	switch {
	case c.Commands == nil:
		return errors.New("httpapi: Config.Commands is required")
	case c.Org == nil:
		return errors.New("httpapi: Config.Org is required")
	case c.ReadModels == nil:
		return errors.New("httpapi: Config.ReadModels is required")
	case c.Log == nil:
		return errors.New("httpapi: Config.Log is required")
	case c.Keys == nil:
		return errors.New("httpapi: Config.Keys is required")
	case c.DB == nil && c.Tokens == nil:
		return errors.New("httpapi: Config.DB is required")
	case c.DB == nil:
		return errors.New("httpapi: Config.DB is required (idempotency keys)")
	case c.WaitTimeout < 0:
		return errors.New("httpapi: Config.WaitTimeout must not be negative")
	case c.AsOfWait < 0:
		return errors.New("httpapi: Config.AsOfWait must not be negative")
	case c.RateLimit.Rate > 0 && c.RateLimit.Burst < 1:
		return errors.New("httpapi: Config.RateLimit.Burst must be at least 1")
	}
	return nil
}

// Server is the API as an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   domain.Clock
	tokens  *Tokens
	idem    *idempotency
	limit   *limiter
	metrics *metrics
	cache   responseCache
	router  chi.Router
	routes  []route
	openapi []byte
}

var _ http.Handler = (*Server)(nil)

// New builds the API: it creates its tables in cfg.DB if needed and
// registers every route of the route table.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &Server{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, tokens: cfg.Tokens}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = domain.SystemClock
	}
	if s.cfg.WaitTimeout == 0 {
		s.cfg.WaitTimeout = DefaultWaitTimeout
	}
	if s.cfg.AsOfWait == 0 {
		s.cfg.AsOfWait = DefaultAsOfWait
	}
	switch {
	case cfg.RateLimit == (RateLimit{}):
		s.limit = newLimiter(DefaultRateLimit)
	case cfg.RateLimit.Rate > 0:
		s.limit = newLimiter(cfg.RateLimit)
	}
	var err error
	if s.tokens == nil {
		if s.tokens, err = NewTokens(ctx, cfg.DB, s.clock, 0); err != nil {
			return nil, err
		}
	}
	if s.idem, err = newIdempotency(ctx, cfg.DB, s.clock); err != nil {
		return nil, err
	}
	if err := s.idem.purge(ctx, 7*24*time.Hour); err != nil {
		return nil, fmt.Errorf("httpapi: purge idempotency keys: %w", err)
	}
	s.metrics = newMetrics(cfg.Lags)
	s.routes = s.routeTable()
	r := chi.NewRouter()
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Code: codeNotFound, Message: "no route " + r.URL.Path + "; see /v1/openapi.json"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Code: codeMethod, Message: r.Method + " is not allowed on " + r.URL.Path})
	})
	for i := range s.routes {
		rt := &s.routes[i]
		r.Method(rt.method, rt.path, s.wrap(rt))
	}
	r.Method(http.MethodGet, "/healthz", http.HandlerFunc(s.healthz))
	r.Method(http.MethodGet, "/readyz", http.HandlerFunc(s.readyz))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	if s.openapi, err = buildOpenAPI(s.routes); err != nil {
		return nil, err
	}
	r.Method(http.MethodGet, "/v1/openapi.json", http.HandlerFunc(s.serveOpenAPI))
	s.router = r
	return s, nil
}

// Tokens returns the token store the server authenticates with.
func (s *Server) Tokens() *Tokens { return s.tokens }

// ServeHTTP routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.cfg.Ready.Ready(ctx); err != nil {
			writeError(w, &apiError{Code: codeUnavailable, Message: "not ready: " + err.Error(), RetryAfter: 1})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openapi)
}

// NewHTTPServer returns an http.Server for handler with timeouts that keep
// slow or stuck clients from holding connections: 5 s to send the headers,
// 30 s for the whole request, 60 s to write a response (a min_position wait
// is bounded well below), 120 s idle keep-alive, and 64 KiB of headers.
func NewHTTPServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"perfledger/adapters/memory"
	"perfledger/domain"
	"perfledger/projections"
)

// env is a whole API over real parts: the in-memory event store, the domain
// service, the projection runner on SQLite fed from the store's
// subscription, SQLite for the API's tables, and a real listener.
type env struct {
	api    *Server
	srv    *httptest.Server
	store  domain.EventStore
	svc    *domain.Service
	runner *projections.Runner
	keys   *domain.MemKeys
	logs   *syncBuffer
	clock  *fakeClock
	tok    map[string]string // fixture principal name → bearer secret
	stop   func()            // stops feeding the projections
	who    map[string]Principal
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOption func(*Config)

// fixture ids: team "north" with sub-team "north-1"; team "south".
// Members: manager "mara" (north), reps "rui" and "rita" (north-1), rep
// "sam" (south), manager "sol" (south), hr member "hana" (north).
const (
	teamNorth  = "north"
	teamNorth1 = "north-1"
	teamSouth  = "south"
)

func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	return newEnvOn(tb, nil, opts...)
}

// newEnvOn builds the env on store (nil: a fresh in-memory store).
func newEnvOn(tb testing.TB, store domain.EventStore, opts ...envOption) *env {
	tb.Helper()
	e := &env{clock: newFakeClock(), logs: &syncBuffer{}, tok: map[string]string{}, who: map[string]Principal{}}
	// "Now" is early December 2026, so November is over and can be finalized.
	e.clock.ns.Store(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC).UnixNano())
	e.store = store
	if store == nil {
		e.store = memory.New(e.clock.Now)
	}
	e.keys = domain.NewMemKeys()
	e.svc = domain.NewService(e.store, e.keys, e.clock.Now)
	views := openDB(tb, "views.db")
	views.SetMaxOpenConns(4)
	views.SetMaxIdleConns(4)
	var err error
	e.runner, err = projections.NewRunner(context.Background(), projections.RunnerConfig{DB: views, Projections: readModelFactories(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after the databases, so that it runs before they close.
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	e.stop = func() { cancel(); <-fed }
	tb.Cleanup(e.stop)
	go func() { defer close(fed); e.feed(ctx) }()
	cfg := Config{
		Commands:   e.svc,
		Org:        NewStoreOrg(e.store),
		ReadModels: e.runner,
		Keys:       e.keys,
		Log:        e.store,
		DB:         openDB(tb, "api.db"),
		Logger:     slog.New(slog.NewTextHandler(e.logs, nil)),
		Clock:      e.clock.Now,
		RateLimit:  RateLimit{Rate: -1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.api, err = New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api)
	tb.Cleanup(e.srv.Close)
	e.seed(tb)
	return e
}

// readModelFactories lists the projections the API serves.
func readModelFactories() []projections.Factory {
	return projections.All()
}

// feed applies every stored event to every projection, like the bus does:
// in batches of what is available.
func (e *env) feed(ctx context.Context) {
	names := e.runner.Names()
	ch := make(chan domain.Event, 1024)
	go func() {
		defer close(ch)
		for ev, err := range e.store.Subscribe(ctx, domain.Position{}) {
			if err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	for ev := range ch {
		batch := []domain.Event{ev}
	more:
		for len(batch) < 512 {
			select {
			case ev, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			default:
				break more
			}
		}
		for _, n := range names {
			if err := e.runner.Apply(ctx, n, batch); err != nil {
				if ctx.Err() == nil {
					panic(err)
				}
				for range ch {
				}
				return
			}
		}
	}
}

// exec runs a command directly through the service, as the fixture admin.
func (e *env) exec(tb testing.TB, cmd domain.Command) domain.Result {
	tb.Helper()
	res, err := e.svc.Execute(context.Background(), cmd, domain.CommandMeta{CommandID: domain.NewID(), Actor: "test"})
	if err != nil {
		tb.Fatalf("%s: %v", cmd.CommandName(), err)
	}
	return res
}

// token creates a token for a fixture principal.
func (e *env) token(tb testing.TB, name string, nt NewToken) {
	tb.Helper()
	info, secret, err := e.api.Tokens().Create(context.Background(), nt)
	if err != nil {
		tb.Fatal(err)
	}
	e.tok[name], e.who[name] = secret, info.Principal
}

func (e *env) seed(tb testing.TB) {
	e.exec(tb, domain.FormTeam{TeamID: teamNorth, Name: "North", Department: "sales", Region: "north"})
	e.exec(tb, domain.FormTeam{TeamID: teamNorth1, Name: "North 1", Department: "sales", Region: "north", ParentTeamID: teamNorth})
	e.exec(tb, domain.FormTeam{TeamID: teamSouth, Name: "South", Department: "sales", Region: "south"})
	join := func(id, name, role, team string) {
		e.exec(tb, domain.JoinMember{MemberID: id, DisplayName: name, Role: role, TeamID: team, JoinedOn: "2024-01-08"})
	}
	join("mara", "Mara", "sales_manager", teamNorth)
	join("rui", "Rui", "salesperson", teamNorth1)
	join("rita", "Rita", "salesperson", teamNorth1)
	join("sam", "Sam", "salesperson", teamSouth)
	join("sol", "Sol", "sales_supervisor", teamSouth)
	join("hana", "Hana", "salesperson", teamNorth)
	e.token(tb, "rep", NewToken{Role: RoleRep, MemberID: "rui", TeamID: teamNorth1})
	e.token(tb, "rep2", NewToken{Role: RoleRep, MemberID: "sam", TeamID: teamSouth})
	e.token(tb, "manager", NewToken{Role: RoleManager, MemberID: "mara", TeamID: teamNorth})
	e.token(tb, "manager2", NewToken{Role: RoleManager, MemberID: "sol", TeamID: teamSouth})
	join("max", "Max", "sales_director", teamNorth)
	e.token(tb, "manager3", NewToken{Role: RoleManager, MemberID: "max", TeamID: teamNorth})
	e.token(tb, "hr", NewToken{Role: RoleHR, MemberID: "hana"})
	e.exec(tb, domain.CloseSale{SaleID: "seed-sale", MemberID: "rui", Customer: "Seed", AmountMinor: 10000, Currency: "EUR",
		OccurredAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)})
	e.exec(tb, domain.LogActivity{ActivityID: "seed-visit", MemberID: "rui", Kind: "visit", Quantity: 4,
		OccurredAt: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)})
	e.token(tb, "auditor", NewToken{Role: RoleAuditor})
	e.token(tb, "admin", NewToken{Role: RoleAdmin})
}

// principal name per role, for the route × role table.
var roleToken = map[Role]string{RoleRep: "rep", RoleManager: "manager", RoleHR: "hr", RoleAuditor: "auditor", RoleAdmin: "admin"}

type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the error code of an error response.
func (r response) errorCode() string {
	var b errorBody
	_ = json.Unmarshal(r.body, &b)
	return string(b.Error.Code)
}

func (r response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request as the named fixture principal ("" = anonymous).
// body may be a []byte, a string (sent as is) or a value encoded as JSON.
func (e *env) do(tb testing.TB, who, method, path string, body any, header map[string]string) response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+e.tok[who])
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// settle waits until the read models reflect every stored event.
func (e *env) settle(tb testing.TB) {
	tb.Helper()
	var head domain.Position
	for ev, err := range e.store.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		head = ev.Position
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.runner.WaitFor(ctx, head); err != nil {
		tb.Fatalf("read models did not reach %s: %v", head, err)
	}
}

// events counts the events in the store.
func (e *env) events(tb testing.TB) int {
	tb.Helper()
	n := 0
	for _, err := range e.store.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		n++
	}
	return n
}

package domain

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type world struct {
	store *fakeStore
	keys  *MemKeys
	clock *testClock
	svc   *Service
	n     int
}

func newWorld(tb testing.TB, opts ...Option) *world {
	tb.Helper()
	w := &world{store: newFakeStore(), keys: NewMemKeys(), clock: newTestClock(testNow)}
	w.svc = NewService(w.store, w.keys, w.clock.Now, opts...)
	return w
}

// exec runs cmd with a fresh command id and fails the test on error.
func (w *world) exec(tb testing.TB, cmd Command) Result {
	tb.Helper()
	res, err := w.try(cmd)
	if err != nil {
		tb.Fatalf("%s: %v", cmd.CommandName(), err)
	}
	return res
}

func (w *world) try(cmd Command) (Result, error) {
	w.n++
	return w.svc.Execute(context.Background(), cmd, CommandMeta{CommandID: fmt.Sprintf("cmd-%d", w.n), Actor: "tester"})
}

// seed forms teams t-0 (region), t-1, t-2 and members m-1, m-2 (salespeople),
// boss (supervisor) and rd (regional director).
func (w *world) seed(tb testing.TB) {
	tb.Helper()
	w.exec(tb, FormTeam{TeamID: "t-0", Name: "Madrid", Department: "sales", Region: "Madrid"})
	w.exec(tb, FormTeam{TeamID: "t-1", Name: "Norte", Department: "sales", Region: "Madrid", ParentTeamID: "t-0"})
	w.exec(tb, FormTeam{TeamID: "t-2", Name: "Sur", Department: "sales", Region: "Madrid", ParentTeamID: "t-0"})
	for id, role := range map[string]string{"m-1": "salesperson", "m-2": "salesperson", "boss": "sales_supervisor", "rd": "regional_director"} {
		w.exec(tb, JoinMember{MemberID: id, DisplayName: "Name " + id, Role: role, TeamID: "t-1", JoinedOn: "2024-01-10"})
	}
}

func (w *world) stream(tb testing.TB, stream string) []Event {
	tb.Helper()
	var out []Event
	for e, err := range w.store.ReadStream(context.Background(), stream, 0) {
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestExecuteAppendsWithTheEnvelope(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	meta := CommandMeta{CommandID: "0190f3a2-1111-7000-8000-000000000001", Actor: "token:ana", CorrelationID: "req-1", CausationID: "ev-0"}
	res, err := w.svc.Execute(context.Background(), LogActivity{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 3, OccurredAt: at}, meta)
	if err != nil {
		t.Fatal(err)
	}
	stored := w.stream(t, MemberStream("m-1"))
	last := stored[len(stored)-1]
	if diff := cmp.Diff(Result{Stream: "member-m-1", Revision: last.Revision, Position: last.Position}, res, cmpResultHead()); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	want := Event{ID: EventID(meta.CommandID, 0), Type: TypeActivityLogged, Stream: "member-m-1", Revision: 1,
		Position: last.Position, Data: last.Data, OccurredAt: at, RecordedAt: testNow, Actor: "token:ana",
		CorrelationID: "req-1", CausationID: "ev-0", PrevHash: stored[0].Hash, Hash: last.Hash}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("stored event (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Event{{ID: want.ID, Type: want.Type, Stream: want.Stream, Revision: 1, Position: last.Position,
		Data: last.Data, OccurredAt: at, RecordedAt: testNow, Actor: "token:ana", CorrelationID: "req-1", CausationID: "ev-0"}}, res.Events); diff != "" {
		t.Errorf("result events (-want +got):\n%s", diff)
	}
	p, err := DecodePayload(last.Type, last.Data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&ActivityLogged{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 3, OccurredAt: at}, p); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if got := w.stream(t, MemberStream("m-1"))[0].OccurredAt; !got.Equal(time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("MemberJoined occurred_at = %v, want the joined_on date", got)
	}
}

func cmpResultHead() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Events" }, cmp.Ignore())
}

func TestExecuteRefusesWithDomainErrors(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	tests := []struct {
		name string
		cmd  Command
		want error
	}{
		{"join to an unknown team is not found", JoinMember{MemberID: "m-9", DisplayName: "X", Role: "salesperson", TeamID: "t-404", JoinedOn: "2026-01-01"}, ErrNotFound},
		{"transfer to an unknown team is not found", TransferMember{MemberID: "m-1", ToTeamID: "t-404", EffectiveOn: "2026-01-01"}, ErrNotFound},
		{"activity of an unknown member is not found", LogActivity{ActivityID: "a", MemberID: "nobody", Kind: "visit", Quantity: 1}, ErrNotFound},
		{"sale in dollars is a rule violation", CloseSale{SaleID: "s", MemberID: "m-1", Customer: "c", AmountMinor: 1, Currency: "USD"}, ErrRuleViolated},
		{"empty member id is invalid", LogActivity{ActivityID: "a", Kind: "visit", Quantity: 1}, ErrInvalid},
		{"effect of unknown promotion is not found", EffectPromotion{PromotionID: "p-404"}, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := w.try(tt.cmd); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := w.svc.Execute(context.Background(), FormTeam{TeamID: "x"}, CommandMeta{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("no command id: %v, want ErrInvalid", err)
	}
}

func TestExecuteIsIdempotentForARepeatedCommandID(t *testing.T) {
	tests := []struct {
		name   string
		repeat func(tb testing.TB, w *world) *Service
	}{
		{"same service", func(_ testing.TB, w *world) *Service { return w.svc }},
		{"after the stream was evicted from the cache", func(tb testing.TB, w *world) *Service {
			w.exec(tb, FormTeam{TeamID: "t-x", Name: "x", Department: "sales", Region: "r"})
			return w.svc
		}},
		{"another service on the same store", func(_ testing.TB, w *world) *Service { return NewService(w.store, w.keys, w.clock.Now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, WithCacheSize(1))
			w.seed(t)
			meta := CommandMeta{CommandID: "same", Actor: "a"}
			cmd := LogActivity{ActivityID: "a-1", MemberID: "m-1", Kind: "call", Quantity: 5, OccurredAt: testNow}
			first, err := w.svc.Execute(context.Background(), cmd, meta)
			if err != nil {
				t.Fatal(err)
			}
			before := len(w.stream(t, MemberStream("m-1")))
			svc := tt.repeat(t, w)
			again, err := svc.Execute(context.Background(), cmd, meta)
			if err != nil {
				t.Fatalf("repeat: %v", err)
			}
			if got := len(w.stream(t, MemberStream("m-1"))); got != before {
				t.Errorf("repeat appended: %d events, want %d", got, before)
			}
			if diff := cmp.Diff(first, again, cmp.FilterPath(func(p cmp.Path) bool {
				s := p.String()
				return s == "Events.PrevHash" || s == "Events.Hash"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("repeat result (-first +again):\n%s", diff)
			}
		})
	}
}

func TestExecuteRetriesOnConflict(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	other := NewService(w.store, w.keys, w.clock.Now)
	// A concurrent writer appends to the stream just before our append.
	w.store.mu.Lock()
	w.store.beforeAppend = func(stream string) {
		if _, err := other.Execute(context.Background(), LogActivity{ActivityID: "a-other", MemberID: "m-1", Kind: "visit", Quantity: 1},
			CommandMeta{CommandID: "other"}); err != nil {
			t.Errorf("concurrent writer: %v", err)
		}
	}
	w.store.mu.Unlock()
	res := w.exec(t, LogActivity{ActivityID: "a-mine", MemberID: "m-1", Kind: "visit", Quantity: 2})
	if res.Revision != 2 {
		t.Errorf("revision = %d, want 2 (after the concurrent writer's 1)", res.Revision)
	}
	// A decision that depends on the other writer's event sees it after the retry.
	if _, err := w.try(LogActivity{ActivityID: "a-other", MemberID: "m-1", Kind: "visit", Quantity: 1}); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("reusing the concurrent writer's activity id: %v, want ErrAlreadyExists", err)
	}
}

// conflictStore always reports a conflict.
type conflictStore struct{ *fakeStore }

func (s conflictStore) Append(ctx context.Context, stream string, expected ExpectedRevision, events []NewEvent) (AppendResult, error) {
	return AppendResult{}, &ConflictError{Stream: stream, Expected: expected, Actual: 99, HasStream: true}
}

func TestExecuteGivesUpAfterBoundedRetries(t *testing.T) {
	svc := NewService(conflictStore{newFakeStore()}, NewMemKeys(), func() time.Time { return testNow }, WithRetries(2))
	_, err := svc.Execute(context.Background(), FormTeam{TeamID: "t", Name: "n", Department: "sales", Region: "r"}, CommandMeta{CommandID: "c"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("error = %v, want ErrConflict", err)
	}
}

func TestLongStreamIsNeverReloadedWhole(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	n := 2000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		w.exec(t, LogActivity{ActivityID: fmt.Sprintf("a-%d", i), MemberID: "m-1", Kind: "call", Quantity: 1})
	}
	// Another service appends; ours must catch up from its cached revision.
	other := NewService(w.store, w.keys, w.clock.Now)
	if _, err := other.Execute(context.Background(), VoidActivity{MemberID: "m-1", ActivityID: "a-7", Reason: "dup"}, CommandMeta{CommandID: "o"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.try(VoidActivity{MemberID: "m-1", ActivityID: "a-7", Reason: "dup"}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("void seen through catch-up: %v, want ErrAlreadyExists", err)
	}
	fromZero := 0
	for _, from := range w.store.readsOf(MemberStream("m-1")) {
		if from == 0 {
			fromZero++
		}
	}
	// One full load by our service, one by the other service.
	if fromZero != 2 {
		t.Errorf("member stream read from revision 0 %d times, want 2 (one per service)", fromZero)
	}
}

func TestConcurrentCommandsOnOneStream(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	other := NewService(w.store, w.keys, w.clock.Now) // a second process
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		svc := w.svc
		if i%2 == 1 {
			svc = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Execute(context.Background(), LogActivity{ActivityID: fmt.Sprintf("a-%d", i), MemberID: "m-1", Kind: "visit", Quantity: 1},
				CommandMeta{CommandID: fmt.Sprintf("c-%d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrConflict) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	seen := map[string]bool{}
	v := NewChainVerifier()
	for _, e := range w.stream(t, MemberStream("m-1")) {
		if err := v.Check(&e); err != nil {
			t.Fatal(err)
		}
		if seen[e.ID] {
			t.Errorf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
}

func TestForgetMemberDestroysTheKey(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	w.exec(t, RecordProfile{MemberID: "m-1", Profile: Profile{Birthday: "1991-02-03", Hobbies: []string{"padel"}}})
	w.exec(t, ForgetMember{MemberID: "m-1", RequestedBy: "hr-1", Reason: "request"})
	var profile *MemberProfileRecorded
	for _, e := range w.stream(t, MemberStream("m-1")) {
		if e.Type == TypeMemberProfileRecorded {
			p, err := DecodePayload(e.Type, e.Data)
			if err != nil {
				t.Fatal(err)
			}
			profile = p.(*MemberProfileRecorded)
		}
	}
	if profile == nil {
		t.Fatal("no profile stored")
	}
	if _, erased, err := OpenProfile(context.Background(), w.keys, profile); err != nil || !erased {
		t.Errorf("after forgetting: erased %v err %v, want erased", erased, err)
	}
	if _, err := w.try(RecordProfile{MemberID: "m-1"}); !errors.Is(err, ErrRuleViolated) {
		t.Errorf("profile after forgetting: %v, want ErrRuleViolated", err)
	}
}

func TestPromotionWorkflow(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	w.exec(t, NominatePromotion{PromotionID: "p-1", MemberID: "m-1", ToRole: "sales_supervisor", NominatedBy: "boss",
		Justification: "leads the team", ProposedEffectiveOn: "2026-12-01"})
	if _, err := w.try(ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}); !errors.Is(err, ErrRuleViolated) {
		t.Fatalf("approval before eligibility: %v, want ErrRuleViolated", err)
	}
	w.exec(t, RecordEligibility{PromotionID: "p-1", RulesVersion: 1, Criteria: []Criterion{{Code: "E1", Passed: true}}, Eligible: true})
	if _, err := w.try(EffectPromotion{PromotionID: "p-1"}); !errors.Is(err, ErrRuleViolated) {
		t.Fatalf("effect before approval: %v, want ErrRuleViolated", err)
	}
	w.exec(t, ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR})
	if _, err := w.try(EffectPromotion{PromotionID: "p-1"}); !errors.Is(err, ErrRuleViolated) {
		t.Fatalf("effect before the effective date: %v, want ErrRuleViolated", err)
	}
	w.clock.Set(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	w.exec(t, EffectPromotion{PromotionID: "p-1"})
	m, err := w.svc.Member(context.Background(), "m-1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Role != "sales_supervisor" || m.RoleSince != "2026-12-01" {
		t.Errorf("after effect: role %q since %q", m.Role, m.RoleSince)
	}
	// Now a supervisor: the old nominator no longer ranks above them.
	if _, err := w.try(NominatePromotion{PromotionID: "p-2", MemberID: "m-1", ToRole: "regional_director", NominatedBy: "boss",
		Justification: "x", ProposedEffectiveOn: "2027-06-01"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("nomination by a peer supervisor: %v, want ErrForbidden", err)
	}
	w.exec(t, RescindPromotion{PromotionID: "p-1", Reason: "records error", ApprovedBy: "hr-2", ApproverRole: RoleHR})
	if m, _ := w.svc.Member(context.Background(), "m-1"); m.Role != "salesperson" {
		t.Errorf("after rescission: role %q, want salesperson", m.Role)
	}
}

func TestServiceLoaders(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	ctx := context.Background()
	if _, err := w.svc.Member(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Member(nobody): %v, want ErrNotFound", err)
	}
	if tf, err := w.svc.Team(ctx, "t-1"); err != nil || tf.ParentTeamID != "t-0" {
		t.Errorf("Team(t-1) = %+v, %v", tf, err)
	}
	if _, err := w.svc.Team(ctx, "t-404"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Team(t-404): %v, want ErrNotFound", err)
	}
	if o, err := w.svc.Org(ctx); err != nil || o.Rules.Currency != "EUR" || o.Rank("general_manager") != 7 {
		t.Errorf("Org = %+v, %v", o, err)
	}
	for name, err := range map[string]error{
		"promotion":  func() error { _, err := w.svc.Promotion(ctx, "p"); return err }(),
		"suggestion": func() error { _, err := w.svc.Suggestion(ctx, "s"); return err }(),
		"target":     func() error { _, err := w.svc.Target(ctx, "g"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown %s: %v, want ErrNotFound", name, err)
		}
	}
}

func BenchmarkExecuteLogActivityOnLongStream(b *testing.B) {
	w := newWorld(b)
	w.seed(b)
	for i := range 10000 {
		w.exec(b, LogActivity{ActivityID: fmt.Sprintf("pre-%d", i), MemberID: "m-1", Kind: "call", Quantity: 1})
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.exec(b, LogActivity{ActivityID: fmt.Sprintf("a-%d", i), MemberID: "m-1", Kind: "call", Quantity: 1})
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	_, data, _ := EncodePayload(&ActivityLogged{ActivityID: "0190f3a2-0000-7000-8000-000000000001", MemberID: "m-123", Kind: "visit",
		Quantity: 3, Customer: "ACME Iberia S.L.", OccurredAt: testNow})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodePayload(TypeActivityLogged, data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCommandIDReusedForAnotherStreamIsRefused(t *testing.T) {
	w := newWorld(t)
	w.seed(t)
	meta := CommandMeta{CommandID: "key-1"}
	if _, err := w.svc.Execute(context.Background(), LogActivity{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 1}, meta); err != nil {
		t.Fatal(err)
	}
	_, err := w.svc.Execute(context.Background(), LogActivity{ActivityID: "a-1", MemberID: "m-2", Kind: "visit", Quantity: 1}, meta)
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("reused command id on another stream: %v, want ErrAlreadyExists", err)
	}
	if got := len(w.stream(t, MemberStream("m-2"))); got != 1 {
		t.Errorf("member-m-2 has %d events, want only its MemberJoined", got)
	}
}

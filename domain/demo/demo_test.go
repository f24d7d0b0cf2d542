package demo_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/domain/demo"
	"perfledger/domain/scoring"
)

// memStore is a minimal in-memory event store for these tests.
type memStore struct {
	mu      sync.Mutex
	streams map[string][]domain.Event
	all     []domain.Event
}

var _ domain.EventStore = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{streams: map[string][]domain.Event{}} }

func (s *memStore) Append(_ context.Context, stream string, expected domain.ExpectedRevision, events []domain.NewEvent) (domain.AppendResult, error) {
	if err := domain.ValidateAppend(stream, events); err != nil {
		return domain.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.streams[stream]
	last, has := uint64(len(evs))-1, len(evs) > 0
	if !expected.Matches(last, has) {
		return domain.AppendResult{}, &domain.ConflictError{Stream: stream, Expected: expected, Actual: last, HasStream: has}
	}
	prev := ""
	if has {
		prev = evs[len(evs)-1].Hash
	}
	for _, ne := range events {
		e := domain.Event{ID: ne.ID, Type: ne.Type, Stream: stream, Revision: uint64(len(evs)),
			Position: domain.Seq(uint64(len(s.all) + 1)), Data: ne.Data, OccurredAt: ne.OccurredAt.UTC(),
			RecordedAt: ne.RecordedAt.UTC(), Actor: ne.Actor, CorrelationID: ne.CorrelationID, CausationID: ne.CausationID}
		domain.Seal(prev, &e)
		prev = e.Hash
		evs = append(evs, e)
		s.all = append(s.all, e)
	}
	s.streams[stream] = evs
	last2 := evs[len(evs)-1]
	return domain.AppendResult{Revision: last2.Revision, Position: last2.Position}, nil
}

func (s *memStore) ReadStream(_ context.Context, stream string, from uint64) iter.Seq2[domain.Event, error] {
	s.mu.Lock()
	evs := s.streams[stream]
	s.mu.Unlock()
	return func(yield func(domain.Event, error) bool) {
		for i := from; i < uint64(len(evs)); i++ {
			if !yield(evs[i], nil) {
				return
			}
		}
	}
}

func (s *memStore) ReadAll(_ context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	s.mu.Lock()
	all := s.all
	s.mu.Unlock()
	return func(yield func(domain.Event, error) bool) {
		for _, e := range all {
			if after.Less(e.Position) && !yield(e, nil) {
				return
			}
		}
	}
}

func (s *memStore) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		yield(domain.Event{}, errors.New("memStore: no subscriptions"))
	}
}

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// run executes a generation through a real domain.Service over a memStore,
// one command at a time, with the service clock following the steps.
func run(tb testing.TB, cfg demo.Config) *memStore {
	tb.Helper()
	store := newMemStore()
	clock := &demo.Clock{}
	svc := domain.NewService(store, domain.NewMemKeys(), clock.Now)
	cfg.Step = func(now time.Time) error { clock.Set(now); return nil }
	ctx := context.Background()
	err := demo.Generate(cfg, func(cmd domain.Command, meta domain.CommandMeta) error {
		_, err := svc.Execute(ctx, cmd, meta)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return store
}

func decode[T any](tb testing.TB, e domain.Event) T {
	tb.Helper()
	p, err := domain.DecodePayload(e.Type, e.Data)
	if err != nil {
		tb.Fatal(err)
	}
	v, ok := p.(T)
	if !ok {
		tb.Fatalf("%s decodes to %T", e.Type, p)
	}
	return v
}

func TestGenerateRunsThroughTheService(t *testing.T) {
	months := 6
	if testing.Short() {
		months = 4
	}
	store := run(t, demo.Config{Members: 30, Months: months, Seed: 1, Start: start.AddDate(0, 0, 17)})

	types := map[string]int{}
	for _, e := range store.all {
		types[strings.TrimSuffix(strings.TrimSuffix(e.Type, ".v1"), ".v2")]++
	}
	t.Run("produces_every_kind_of_fact", func(t *testing.T) {
		for _, typ := range []string{"TeamFormed", "MemberJoined", "MemberProfileRecorded", "TargetSet",
			"ActivityLogged", "SaleClosed", "ActivityVoided", "SaleReversed", "QualityAssessed",
			"ManagerRatingRecorded", "EvaluationFinalized", "RewardGranted", "RewardRevoked", "PraiseGiven",
			"MeetingHeld", "SuggestionSubmitted", "SuggestionReviewed", "AchievementPublicized", "TargetRevised"} {
			if types[typ] == 0 {
				t.Errorf("no %s among %v", typ, types)
			}
		}
	})
	t.Run("finalizes_each_worker_once_per_month_after_it_ended", func(t *testing.T) {
		seen := map[string]bool{}
		for _, e := range store.all {
			if e.Type != domain.TypeEvaluationFinalized {
				continue
			}
			f := decode[*domain.EvaluationFinalized](t, e)
			key := f.MemberID + " " + f.Month
			if seen[key] {
				t.Errorf("%s finalized twice", key)
			}
			seen[key] = true
			month, err := domain.ParsePeriod(f.Month)
			if err != nil {
				t.Fatal(err)
			}
			if e.RecordedAt.Before(month.End()) {
				t.Errorf("%s recorded at %s, before the month ended", key, e.RecordedAt)
			}
		}
		if len(seen) == 0 {
			t.Fatal("no evaluation")
		}
	})
	t.Run("stores_scores_that_recompute_from_their_components", func(t *testing.T) {
		rules := scoring.DefaultRules()
		for _, e := range store.all {
			if e.Type != domain.TypeEvaluationFinalized {
				continue
			}
			f := decode[*domain.EvaluationFinalized](t, e)
			score, ok := rules.Evaluation(f.Components)
			band := rules.Band(score)
			if !ok || score != f.Score || band.Level != f.Band || band.Label != f.BandLabel {
				t.Errorf("%s %s: stored %s band %d, components give %s band %d", f.MemberID, f.Month, f.Score, f.Band, score, band.Level)
			}
		}
	})
	t.Run("records_time_in_order", func(t *testing.T) {
		for i := 1; i < len(store.all); i++ {
			if store.all[i].RecordedAt.Before(store.all[i-1].RecordedAt) {
				t.Fatalf("event %d recorded at %s, before event %d at %s", i, store.all[i].RecordedAt, i-1, store.all[i-1].RecordedAt)
			}
		}
		first, last := store.all[0].RecordedAt, store.all[len(store.all)-1].RecordedAt
		if first.Before(start) || last.After(start.AddDate(0, months, 8)) {
			t.Errorf("recorded from %s to %s, outside the simulated months", first, last)
		}
	})
	t.Run("keeps_every_hash_chain", func(t *testing.T) {
		v := domain.NewChainVerifier()
		for _, e := range store.all {
			if err := v.Check(&e); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestGenerateCompletesPromotions(t *testing.T) {
	if testing.Short() {
		t.Skip("a year of a larger organisation")
	}
	store := run(t, demo.Config{Members: 80, Months: 8, Seed: 3, Start: start})
	types := map[string]int{}
	for _, e := range store.all {
		types[e.Type]++
	}
	t.Logf("%v", types)
	for _, typ := range []string{domain.TypePromotionNominated, domain.TypePromotionEligibilityEvaluated,
		domain.TypePromotionApproved, domain.TypePromotionEffected, domain.TypeMemberTransferred} {
		if types[typ] == 0 {
			t.Errorf("no %s in a year", typ)
		}
	}
}

type emitted struct {
	Cmd  domain.Command
	Meta domain.CommandMeta
	At   time.Time
}

func collect(tb testing.TB, cfg demo.Config) []emitted {
	tb.Helper()
	var at time.Time
	var out []emitted
	cfg.Step = func(now time.Time) error { at = now; return nil }
	if err := demo.Generate(cfg, func(cmd domain.Command, meta domain.CommandMeta) error {
		out = append(out, emitted{cmd, meta, at})
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	cfg := demo.Config{Members: 12, Months: 2, Seed: 42, Start: start}
	a, b := collect(t, cfg), collect(t, cfg)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Fatalf("same config, different commands (-first +second):\n%s", diff)
	}
	cfg.Seed = 43
	c := collect(t, cfg)
	if cmp.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same commands")
	}
	t.Run("steps_never_go_back", func(t *testing.T) {
		for i := 1; i < len(a); i++ {
			if a[i].At.Before(a[i-1].At) {
				t.Fatalf("command %d at %s after one at %s", i, a[i].At, a[i-1].At)
			}
		}
	})
	t.Run("command_ids_are_unique_uuids", func(t *testing.T) {
		ids := map[string]bool{}
		for _, e := range a {
			if !domain.IsUUID(e.Meta.CommandID) || ids[e.Meta.CommandID] {
				t.Fatalf("command id %q is not a fresh UUID", e.Meta.CommandID)
			}
			ids[e.Meta.CommandID] = true
		}
	})
}

// TestRunExecutesStepsInParallelByKey executes each step's commands on
// several workers partitioned by demo.Key, as the package documentation
// allows, and expects no domain error and the same facts as a sequential run.
func TestRunExecutesStepsInParallelByKey(t *testing.T) {
	cfg := demo.Config{Members: 24, Months: 2, Seed: 9, Start: start}
	store := newMemStore()
	clock := &demo.Clock{}
	svc := domain.NewService(store, domain.NewMemKeys(), clock.Now)
	steps := 0
	cfg.Step = func(time.Time) error { steps++; return nil }
	stats, err := demo.Run(context.Background(), cfg, 4, clock, func(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error {
		_, err := svc.Execute(ctx, cmd, meta)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Commands != len(store.all) || stats.Steps != steps || steps == 0 {
		t.Errorf("stats %+v with %d events and %d steps", stats, len(store.all), steps)
	}
	cfg.Step = nil
	sequential := run(t, cfg)
	count := func(s *memStore) map[string]int {
		m := map[string]int{}
		for _, e := range s.all {
			m[e.Type]++
		}
		return m
	}
	if diff := cmp.Diff(count(sequential), count(store)); diff != "" {
		t.Errorf("event counts, sequential vs parallel (-want +got):\n%s", diff)
	}
}

func TestRunStopsAtTheFirstFailure(t *testing.T) {
	boom := errors.New("boom")
	var mu sync.Mutex
	n := 0
	_, err := demo.Run(context.Background(), demo.Config{Members: 12, Months: 1, Seed: 2, Start: start}, 3, nil,
		func(_ context.Context, cmd domain.Command, _ domain.CommandMeta) error {
			mu.Lock()
			defer mu.Unlock()
			n++
			if _, ok := cmd.(domain.LogActivity); ok {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if n > 2000 {
		t.Errorf("%d commands executed after the failure", n)
	}
}

func TestGenerateStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	err := demo.Generate(demo.Config{Members: 6, Months: 1, Seed: 1, Start: start}, func(domain.Command, domain.CommandMeta) error {
		n++
		if n == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 5 {
		t.Errorf("err = %v after %d commands, want boom after 5", err, n)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]demo.Config{
		"too_few_members":  {Members: 5, Months: 1, Start: start},
		"no_months":        {Members: 10, Months: 0, Start: start},
		"too_many_months":  {Members: 10, Months: 121, Start: start},
		"no_start":         {Members: 10, Months: 1},
		"negative_members": {Members: -1, Months: 1, Start: start},
	} {
		t.Run("rejects_"+name, func(t *testing.T) {
			if err := cfg.Validate(); err == nil {
				t.Error("Validate() = nil")
			}
			if err := demo.Generate(cfg, func(domain.Command, domain.CommandMeta) error { return nil }); err == nil {
				t.Error("Generate accepted an invalid config")
			}
		})
	}
}

func TestDefaultStart(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		want time.Time
	}{
		{time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 11, 3, 3, 0, 0, 0, time.UTC), time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got := demo.DefaultStart(tc.now, 12); !got.Equal(tc.want) {
			t.Errorf("DefaultStart(%s, 12) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		n := 0
		if err := demo.Generate(demo.Config{Members: 200, Months: 12, Seed: 1, Start: start}, func(domain.Command, domain.CommandMeta) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n), "commands/op")
	}
}

func BenchmarkGenerateThroughService(b *testing.B) {
	for b.Loop() {
		store := run(b, demo.Config{Members: 200, Months: 12, Seed: 1, Start: start})
		b.ReportMetric(float64(len(store.all)), "events/op")
	}
}

func BenchmarkRunThroughService(b *testing.B) {
	for b.Loop() {
		store := newMemStore()
		clock := &demo.Clock{}
		svc := domain.NewService(store, domain.NewMemKeys(), clock.Now)
		stats, err := demo.Run(context.Background(), demo.Config{Members: 200, Months: 12, Seed: 1, Start: start}, 16, clock,
			func(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error {
				_, err := svc.Execute(ctx, cmd, meta)
				return err
			})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(stats.Commands), "commands/op")
		b.ReportMetric(float64(stats.Steps), "steps/op")
	}
}

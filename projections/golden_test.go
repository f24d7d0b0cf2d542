package projections_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"perfledger/domain"
	"perfledger/projections"
)

var updateGolden = flag.Bool("update", false, "rewrite the projections' golden files")

// goldenLine is one line of testdata/<name>.events.jsonl: an event envelope
// with its payload. Missing envelope fields are filled in by readEvents:
// position = line number, revision = count in the stream, id derived from
// the file name and line, recorded_at = occurred_at.
type goldenLine struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Stream        string          `json:"stream"`
	OccurredAt    time.Time       `json:"occurred_at"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Actor         string          `json:"actor"`
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Data          json.RawMessage `json:"data"`
}

// readEvents loads a golden event log, decoding each payload strictly (an
// unknown field is a typo in the test data) and sealing the hash chain.
func goldenEvents(tb testing.TB, name string) []projections.Envelope {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".events.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []projections.Envelope
	revs := map[string]uint64{}
	tips := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		var gl goldenLine
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&gl); err != nil {
			tb.Fatalf("%s line %d: %v", name, line, err)
		}
		var data bytes.Buffer
		if err := json.Compact(&data, gl.Data); err != nil {
			tb.Fatalf("%s line %d: data: %v", name, line, err)
		}
		p, err := domain.DecodePayload(gl.Type, data.Bytes())
		if err != nil {
			tb.Fatalf("%s line %d: %v", name, line, err)
		}
		// A field the payload does not know is a typo in the golden log;
		// an older version (upcast when decoded) has fields of its own.
		if gl.Type == p.EventType() {
			strict := reflect.New(reflect.TypeOf(p).Elem()).Interface()
			sdec := json.NewDecoder(bytes.NewReader(data.Bytes()))
			sdec.DisallowUnknownFields()
			if err := sdec.Decode(strict); err != nil {
				tb.Fatalf("%s line %d: %s payload: %v", name, line, gl.Type, err)
			}
		}
		ev := domain.Event{
			ID: gl.ID, Type: gl.Type, Stream: gl.Stream, Data: data.Bytes(),
			OccurredAt: gl.OccurredAt.UTC(), RecordedAt: gl.RecordedAt.UTC(), Actor: gl.Actor,
			CorrelationID: gl.CorrelationID, CausationID: gl.CausationID,
			Position: domain.Seq(uint64(len(out) + 1)),
		}
		if ev.ID == "" {
			ev.ID = domain.EventID("golden:"+name, line)
		}
		if ev.RecordedAt.IsZero() {
			ev.RecordedAt = ev.OccurredAt
		}
		ev.Revision = revs[ev.Stream]
		revs[ev.Stream]++
		domain.Seal(tips[ev.Stream], &ev)
		tips[ev.Stream] = ev.Hash
		out = append(out, projections.Envelope{Event: ev, Payload: p})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// openDB opens a private in-memory read-model database.
func goldenDB(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	tb.Cleanup(func() { db.Close() })
	return db
}

// project sets up a projector instance and applies events in batches of
// batchSize (all at once when batchSize is 0), one transaction per batch.
func goldenProject(tb testing.TB, db *sql.DB, p projections.Projector, events []projections.Envelope, batchSize int) {
	tb.Helper()
	ctx := context.Background()
	goldenTx(tb, db, func(tx *sql.Tx) error { return p.Setup(ctx, tx) })
	if batchSize <= 0 {
		batchSize = len(events)
	}
	for i := 0; i < len(events); i += batchSize {
		batch := events[i:min(i+batchSize, len(events))]
		goldenTx(tb, db, func(tx *sql.Tx) error { return p.Apply(ctx, tx, batch) })
	}
}

// goldenRuns sets up a Batcher's instance and gives it all events in one
// transaction, through Add in runs of run events.
func goldenRuns(tb testing.TB, db *sql.DB, p projections.Projector, events []projections.Envelope, run int) {
	tb.Helper()
	ctx := context.Background()
	goldenTx(tb, db, func(tx *sql.Tx) error { return p.Setup(ctx, tx) })
	goldenTx(tb, db, func(tx *sql.Tx) error {
		b, err := p.(projections.Batcher).Begin(ctx, tx)
		if err != nil {
			return err
		}
		for i := 0; i < len(events); i += run {
			if err := b.Add(ctx, events[i:min(i+run, len(events))]); err != nil {
				return err
			}
		}
		return b.Finish(ctx)
	})
}

func goldenTx(tb testing.TB, db *sql.DB, f func(*sql.Tx) error) {
	tb.Helper()
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		tb.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// golden describes one projection's golden test: the events file and the
// queries whose results make up the golden file, by name.
type golden struct {
	name    string
	factory projections.Factory
	queries func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error)
}

func runGolden(t *testing.T, g golden) {
	t.Helper()
	ctx := context.Background()
	events := goldenEvents(t, g.name)

	results := func(batchSize int) []byte {
		t.Helper()
		db := goldenDB(t)
		p := g.factory(g.name + "_g1_")
		if batchSize < 0 {
			goldenRuns(t, db, p, events, -batchSize)
		} else {
			goldenProject(t, db, p, events, batchSize)
		}
		res, err := g.queries(ctx, db, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	got := results(0)
	// Batching must not change anything: one event per transaction and
	// batches of three give the same results as one big batch.
	for _, size := range []int{1, 3} {
		if diff := cmp.Diff(string(got), string(results(size))); diff != "" {
			t.Fatalf("batch size %d changed the results (-all at once +batched):\n%s", size, diff)
		}
	}
	// Neither does a Batcher given the events in runs of two, in one
	// transaction.
	if _, ok := g.factory("x_").(projections.Batcher); ok {
		if diff := cmp.Diff(string(got), string(results(-2))); diff != "" {
			t.Fatalf("runs of 2 in one batch changed the results (-Apply +Add):\n%s", diff)
		}
	}
	path := filepath.Join("testdata", g.name+".golden.json")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s results differ from %s (-want +got):\n%s", g.name, path, diff)
	}
}

// queryAll runs named queries and collects their results (or errors, as
// text, so that refused queries are part of the golden file too).
func goldenQueries(qs map[string]func() (any, error)) (map[string]any, error) {
	out := make(map[string]any, len(qs))
	for name, q := range qs {
		v, err := q()
		if err != nil {
			out[name] = map[string]string{"error": err.Error()}
			continue
		}
		out[name] = v
	}
	return out, nil
}

func TestGoldenLeaderboard(t *testing.T) {
	runGolden(t, golden{name: "leaderboard", factory: projections.NewLeaderboard,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			lb := p.(*projections.Leaderboard)
			board := func(q projections.BoardQuery) func() (any, error) {
				return func() (any, error) { return lb.Board(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"points_week_company":       board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company"}),
				"points_week_team_north":    board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "team", ScopeID: "t-north"}),
				"points_week_team_south":    board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "team", ScopeID: "t-south"}),
				"points_month_teams":        board(projections.BoardQuery{Metric: "activity_points", Period: "2026-11", Scope: "teams"}),
				"revenue_week_company":      board(projections.BoardQuery{Metric: "revenue", Period: "2026-W47", Scope: "company"}),
				"revenue_quarter_region":    board(projections.BoardQuery{Metric: "revenue", Period: "2026-Q4", Scope: "region", ScopeID: "north"}),
				"points_week_teams_north":   board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "teams", ScopeID: "region:north"}),
				"refused_teams_bad_id":      board(projections.BoardQuery{Metric: "revenue", Period: "2026-W47", Scope: "teams", ScopeID: "north"}),
				"revenue_year_teams":        board(projections.BoardQuery{Metric: "revenue", Period: "2026", Scope: "teams"}),
				"revenue_week_department":   board(projections.BoardQuery{Metric: "revenue", Period: "2026-W47", Scope: "department", ScopeID: "operations"}),
				"attainment_week_company":   board(projections.BoardQuery{Metric: "attainment", Period: "2026-W47", Scope: "company"}),
				"attainment_month_teams":    board(projections.BoardQuery{Metric: "attainment", Period: "2026-11", Scope: "teams"}),
				"weekly_score_week":         board(projections.BoardQuery{Metric: "weekly_score", Period: "2026-W47", Scope: "company"}),
				"weekly_score_operations":   board(projections.BoardQuery{Metric: "weekly_score", Period: "2026-W47", Scope: "department", ScopeID: "operations"}),
				"monthly_score_team_north":  board(projections.BoardQuery{Metric: "monthly_score", Period: "2026-11", Scope: "team", ScopeID: "t-north"}),
				"evaluation_quarter":        board(projections.BoardQuery{Metric: "evaluation", Period: "2026-Q4", Scope: "company"}),
				"evaluation_month":          board(projections.BoardQuery{Metric: "evaluation", Period: "2026-11", Scope: "company"}),
				"points_week_page1":         board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company", Limit: 2}),
				"refused_unknown_metric":    board(projections.BoardQuery{Metric: "happiness", Period: "2026-W47", Scope: "company"}),
				"refused_team_without_id":   board(projections.BoardQuery{Metric: "revenue", Period: "2026-W47", Scope: "team"}),
				"refused_weekly_evaluation": board(projections.BoardQuery{Metric: "evaluation", Period: "2026-W47", Scope: "company"}),
			})
		}})
}

func TestLeaderboardPagesJoinUp(t *testing.T) {
	ctx := context.Background()
	db := goldenDB(t)
	lb := projections.NewLeaderboard("lb_").(*projections.Leaderboard)
	goldenProject(t, db, lb, goldenEvents(t, "leaderboard"), 0)
	q := projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company"}
	whole, err := lb.Board(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	var paged []projections.BoardRow
	q.Limit = 1
	for range 20 {
		page, err := lb.Board(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Rows...)
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if diff := cmp.Diff(whole.Rows, paged); diff != "" {
		t.Errorf("pages of one row differ from the whole board (-whole +paged):\n%s", diff)
	}
}

func TestGoldenScorecard(t *testing.T) {
	runGolden(t, golden{name: "scorecard", factory: projections.NewLeaderboard,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			sc := p.(*projections.Leaderboard).Scorecard()
			week := func(m, w string) func() (any, error) {
				return func() (any, error) { return sc.Week(ctx, db, projections.ScorecardQuery{MemberID: m, Period: w}) }
			}
			month := func(m, w string) func() (any, error) {
				return func() (any, error) { return sc.Month(ctx, db, projections.ScorecardQuery{MemberID: m, Period: w}) }
			}
			return goldenQueries(map[string]func() (any, error){
				"ana_week_46_no_quality":   week("m-ana", "2026-W46"),
				"ana_week_47_golden":       week("m-ana", "2026-W47"),
				"ana_week_48_daily_rating": week("m-ana", "2026-W48"),
				"ana_month_11":             month("m-ana", "2026-11"),
				"ben_week_47_calls_only":   week("m-ben", "2026-W47"),
				"ben_month_11":             month("m-ben", "2026-11"),
				"missing_week":             week("m-ana", "2026-W40"),
				"refused_month_as_week":    week("m-ana", "2026-11"),
			})
		}})
}

func TestGoldenEvaluations(t *testing.T) {
	runGolden(t, golden{name: "evaluations", factory: projections.NewEvaluations,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			ev := p.(*projections.Evaluations)
			q := func(q projections.EvaluationQuery) func() (any, error) {
				return func() (any, error) { return ev.Evaluations(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"all":                q(projections.EvaluationQuery{}),
				"member_ben":         q(projections.EvaluationQuery{MemberID: "m-ben"}),
				"team_south":         q(projections.EvaluationQuery{TeamID: "t-south"}),
				"month_2026_11":      q(projections.EvaluationQuery{Month: "2026-11"}),
				"page_of_3":          q(projections.EvaluationQuery{Limit: 3}),
				"refused_week_month": q(projections.EvaluationQuery{Month: "2026-W47"}),
			})
		}})
}

func TestGoldenPromotions(t *testing.T) {
	runGolden(t, golden{name: "promotions", factory: projections.NewPromotions,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			pr := p.(*projections.Promotions)
			q := func(q projections.PromotionQuery) func() (any, error) {
				return func() (any, error) { return pr.Promotions(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"all":                q(projections.PromotionQuery{}),
				"ana":                q(projections.PromotionQuery{MemberID: "m-ana"}),
				"ben_in_november":    q(projections.PromotionQuery{MemberID: "m-ben", From: "2026-11-01", To: "2026-11-30"}),
				"refused_bad_date":   q(projections.PromotionQuery{From: "2026-13-01"}),
				"first_of_two_pages": q(projections.PromotionQuery{Limit: 2}),
			})
		}})
}

func TestGoldenRewards(t *testing.T) {
	runGolden(t, golden{name: "rewards", factory: projections.NewRewards,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			rw := p.(*projections.Rewards)
			q := func(q projections.RewardQuery) func() (any, error) {
				return func() (any, error) { return rw.Rewards(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"ana_all_time":       q(projections.RewardQuery{MemberID: "m-ana"}),
				"ana_november":       q(projections.RewardQuery{MemberID: "m-ana", Period: "2026-11"}),
				"ana_december":       q(projections.RewardQuery{MemberID: "m-ana", Period: "2026-12"}),
				"everyone_2026_q4":   q(projections.RewardQuery{Period: "2026-Q4"}),
				"refused_bad_period": q(projections.RewardQuery{Period: "2026-W99"}),
			})
		}})
}

func TestGoldenAudit(t *testing.T) {
	runGolden(t, golden{name: "audit", factory: projections.NewAudit,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			au := p.(*projections.Audit)
			q := func(q projections.AuditQuery) func() (any, error) {
				return func() (any, error) { return au.Trail(ctx, db, q) }
			}
			day := func(s string) time.Time {
				t, _ := time.Parse(time.RFC3339, s)
				return t
			}
			return goldenQueries(map[string]func() (any, error){
				"everything":          q(projections.AuditQuery{}),
				"member_ana_page":     q(projections.AuditQuery{MemberID: "m-ana", Limit: 3}),
				"actor_boss":          q(projections.AuditQuery{Actor: "m-boss"}),
				"type_sale_closed":    q(projections.AuditQuery{Type: "SaleClosed"}),
				"type_sale_closed_v1": q(projections.AuditQuery{Type: "SaleClosed.v1"}),
				"type_sale_closed_v2": q(projections.AuditQuery{Type: "SaleClosed.v2", Limit: 1}),
				"member_ana_sales":    q(projections.AuditQuery{MemberID: "m-ana", Type: "SaleClosed"}),
				"stream_team":         q(projections.AuditQuery{Stream: "team-t-north"}),
				"recorded_on_17th":    q(projections.AuditQuery{RecordedFrom: day("2026-11-17T00:00:00Z"), RecordedTo: day("2026-11-18T00:00:00Z")}),
				"refused_empty_range": q(projections.AuditQuery{RecordedFrom: day("2026-11-17T00:00:00Z"), RecordedTo: day("2026-11-17T00:00:00Z")}),
			})
		}})
}

func TestGoldenHonour(t *testing.T) {
	runGolden(t, golden{name: "honour", factory: projections.NewHonour,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			h := p.(*projections.Honour)
			q := func(q projections.HonourQuery) func() (any, error) {
				return func() (any, error) { return h.Roll(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"roll":             q(projections.HonourQuery{}),
				"about_ana":        q(projections.HonourQuery{SubjectID: "m-ana"}),
				"company_audience": q(projections.HonourQuery{Audience: "company"}),
				"newest_two":       q(projections.HonourQuery{Limit: 2}),
				"refused_audience": q(projections.HonourQuery{Audience: "planet"}),
			})
		}})
}

func TestGoldenSuggestions(t *testing.T) {
	runGolden(t, golden{name: "suggestions", factory: projections.NewSuggestions,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			s := p.(*projections.Suggestions)
			q := func(q projections.SuggestionQuery) func() (any, error) {
				return func() (any, error) { return s.Board(ctx, db, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"board":          q(projections.SuggestionQuery{}),
				"adopted":        q(projections.SuggestionQuery{Status: "adopted"}),
				"open":           q(projections.SuggestionQuery{Status: "open"}),
				"by_ana_process": q(projections.SuggestionQuery{AuthorID: "m-ana", Category: "process"}),
				"refused_status": q(projections.SuggestionQuery{Status: "maybe"}),
			})
		}})
}

// goldenKeys is a KeyStore whose keys derive from the member id, so that the
// profile ciphertexts stored in testdata stay readable; Destroy forgets.
type goldenKeys struct{ destroyed map[string]bool }

var _ domain.KeyStore = (*goldenKeys)(nil)

func newGoldenKeys() *goldenKeys { return &goldenKeys{destroyed: map[string]bool{}} }

func (k *goldenKeys) Key(ctx context.Context, memberID string) ([]byte, error) {
	return k.Lookup(ctx, memberID)
}

func (k *goldenKeys) Lookup(_ context.Context, memberID string) ([]byte, error) {
	if k.destroyed[memberID] {
		return nil, domain.ErrKeyDestroyed
	}
	sum := sha256.Sum256([]byte("golden-key:" + memberID))
	return sum[:], nil
}

func (k *goldenKeys) Destroy(_ context.Context, memberID string) error {
	k.destroyed[memberID] = true
	return nil
}

func TestGoldenDirectory(t *testing.T) {
	runGolden(t, golden{name: "directory", factory: projections.NewDirectory,
		queries: func(ctx context.Context, db *sql.DB, p projections.Projector) (map[string]any, error) {
			d := p.(*projections.Directory)
			keys := newGoldenKeys()
			// m-ben was forgotten: the ledger destroyed his key.
			if err := keys.Destroy(ctx, "m-ben"); err != nil {
				return nil, err
			}
			q := func(ks domain.KeyStore, q projections.DirectoryQuery) func() (any, error) {
				return func() (any, error) { return d.Directory(ctx, db, ks, q) }
			}
			return goldenQueries(map[string]func() (any, error){
				"as_of_2026_10_15":        q(keys, projections.DirectoryQuery{AsOf: "2026-10-15"}),
				"as_of_2026_11_15":        q(keys, projections.DirectoryQuery{AsOf: "2026-11-15"}),
				"as_of_2026_12_10":        q(keys, projections.DirectoryQuery{AsOf: "2026-12-10"}),
				"team_south_2026_11_15":   q(keys, projections.DirectoryQuery{AsOf: "2026-11-15", TeamID: "t-south"}),
				"without_keys_2026_11_15": q(nil, projections.DirectoryQuery{AsOf: "2026-11-15"}),
				"first_member_only":       q(keys, projections.DirectoryQuery{AsOf: "2026-11-15", Limit: 1}),
				"refused_no_date":         q(keys, projections.DirectoryQuery{}),
			})
		}})
}

package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"iter"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
)

// tampered serves the log with one event's payload changed, as if someone
// edited the database file.
type tampered struct {
	EventLog
	at domain.Position
}

func (t tampered) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range t.EventLog.ReadAll(ctx, after) {
			if err == nil && e.Position == t.at {
				e.Data = []byte(strings.Replace(string(e.Data), "Seed", "Fake", 1))
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestVerify(t *testing.T) {
	var log EventLog
	e := newEnv(t, func(c *Config) {
		log = c.Log
		c.Log = &tampered{EventLog: c.Log}
	})
	verify := func() verifyReport {
		t.Helper()
		res := e.do(t, "auditor", "GET", "/v1/audit/verify", nil, nil)
		if res.status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.status, res.body)
		}
		var r verifyReport
		res.decode(t, &r)
		return r
	}
	r := verify()
	if !r.OK || r.Events != uint64(e.events(t)) || r.Broken != nil {
		t.Fatalf("untouched log: %+v", r)
	}
	var seed domain.Event
	for ev, err := range log.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == domain.TypeSaleClosed {
			seed = ev
			break
		}
	}
	e.api.cfg.Log.(*tampered).at = seed.Position
	r = verify()
	if r.OK || r.Broken == nil {
		t.Fatalf("tampered log verifies: %+v", r)
	}
	if diff := cmp.Diff(brokenLink{Stream: seed.Stream, Revision: seed.Revision, Field: "hash", Expected: r.Broken.Expected, Found: seed.Hash, Message: r.Broken.Message}, *r.Broken); diff != "" {
		t.Errorf("broken link (-want +got):\n%s", diff)
	}
}

// TestEveryListAnswersCSV asks every table (every list route and the
// scorecards) for text/csv, as the auditor (who may read them all) and checks
// a header row comes back.
func TestEveryListAnswersCSV(t *testing.T) {
	e := newEnv(t)
	n := 0
	for _, rt := range e.api.routes {
		if rt.write || !(rt.list || strings.Contains(rt.path, "/scorecards/")) {
			continue
		}
		who := "auditor"
		if !rt.allows(RoleAuditor) {
			who = "admin"
		}
		path, _ := samples[rt.method+" "+rt.path](t, e, who)
		res := e.do(t, who, rt.method, path, nil, map[string]string{"Accept": "text/csv"})
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") {
			t.Errorf("%s %s: %d %q", rt.method, rt.path, res.status, res.header.Get("Content-Type"))
			continue
		}
		recs, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil || len(recs) == 0 || len(recs[0]) < 2 {
			t.Errorf("%s %s: csv %q: %v", rt.method, rt.path, res.body, err)
		}
		n++
	}
	if n < 10 {
		t.Errorf("only %d list routes", n)
	}
}

func TestTokenSecretIsNeverStored(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "admin", "POST", "/v1/tokens", `{"role":"auditor"}`, map[string]string{"Idempotency-Key": "k1"})
	if res.status != http.StatusBadRequest {
		t.Fatalf("token creation with an Idempotency-Key: %d %s", res.status, res.body)
	}
	res = e.do(t, "admin", "POST", "/v1/tokens", `{"role":"auditor","label":"ext audit"}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("%d %s", res.status, res.body)
	}
	var made createTokenReply
	res.decode(t, &made)
	if !strings.HasPrefix(made.Token, TokenPrefix) {
		t.Fatalf("reply %s", res.body)
	}
	// The new token works, and the list never shows a secret.
	e.tok["new"] = made.Token
	if res := e.do(t, "new", "GET", "/v1/audit/verify", nil, nil); res.status != http.StatusOK {
		t.Errorf("new token: %d", res.status)
	}
	list := e.do(t, "admin", "GET", "/v1/tokens", nil, nil)
	if strings.Contains(string(list.body), made.Token) || strings.Contains(string(list.body), made.Token[len(TokenPrefix):]) {
		t.Error("the token list shows a secret")
	}
	var n int
	if err := e.api.cfg.DB.QueryRow(`SELECT count(*) FROM api_idempotency WHERE CAST(body AS TEXT) LIKE ?`, "%"+made.Token+"%").Scan(&n); err != nil || n != 0 {
		t.Errorf("secret stored in the idempotency table: n=%d err=%v", n, err)
	}
	// Revoked, it is refused at once.
	if res := e.do(t, "admin", "POST", "/v1/tokens/"+made.TokenID+"/revoke", nil, nil); res.status != http.StatusCreated {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if res := e.do(t, "new", "GET", "/v1/audit/verify", nil, nil); res.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", res.status)
	}
}

// FuzzWriteRoutes sends arbitrary bodies to every write route through the
// whole handler: nothing may answer 500, and nothing refused may append.
func FuzzWriteRoutes(f *testing.F) {
	e := newEnv(f)
	var writes []route
	for _, rt := range e.api.routes {
		if rt.write && !rt.secret {
			writes = append(writes, rt)
		}
	}
	for i := range writes {
		for _, s := range []string{`{}`, `{"kind":"visit","quantity":1}`, `{"reason":"x"}`, `{"rating":3,"week":"2026-W48"}`,
			`{"value":"-1","period":"2026-13","kpi":"visits","subject_kind":"member","subject_id":"rui"}`, `[`, `{"to_id":"rui","reason":""}`} {
			f.Add(i, []byte(s))
		}
	}
	paths := map[string]string{"member_id": "rui", "activity_id": "seed-visit", "sale_id": "seed-sale", "month": "2026-11",
		"target_id": "t-none", "suggestion_id": "sg-none", "promotion_id": "p-none", "reward_id": "r-none"}
	callers := map[Role]string{RoleRep: "rep", RoleManager: "manager", RoleHR: "hr", RoleAdmin: "admin"}
	f.Fuzz(func(t *testing.T, which int, body []byte) {
		if which < 0 {
			which = -which
		}
		rt := writes[which%len(writes)]
		path := pathParamRE.ReplaceAllStringFunc(rt.path, func(m string) string { return paths[m[1:len(m)-1]] })
		before := e.events(t)
		res := e.do(t, callers[rt.roles[0]], rt.method, path, body, nil)
		if res.status >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, path, body, res.status, res.body)
		}
		var eb errorBody
		if res.status >= 400 {
			if err := json.Unmarshal(res.body, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("error body %s", res.body)
			}
			if n := e.events(t) - before; n != 0 {
				t.Fatalf("refused request appended %d events", n)
			}
		}
	})
}

func TestRunnerHealth(t *testing.T) {
	e := newEnv(t)
	head := func(ctx context.Context) (domain.Position, error) {
		var p domain.Position
		for ev, err := range e.store.ReadAll(ctx, domain.Position{}) {
			if err != nil {
				return p, err
			}
			p = ev.Position
		}
		return p, nil
	}
	e.settle(t)
	h := RunnerHealth{Runner: e.runner, Head: head}
	if err := h.Ready(context.Background()); err != nil {
		t.Errorf("caught up, yet: %v", err)
	}
	for _, l := range h.Lags(context.Background()) {
		if l.Events != 0 {
			t.Errorf("%s lags %v events", l.Name, l.Events)
		}
	}
	e.stop()
	for range 3 {
		e.exec(t, domain.LogActivity{ActivityID: fresh("a"), MemberID: "rui", Kind: "call", Quantity: 1})
	}
	h.MaxLag = 2
	if err := h.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "3 behind") {
		t.Errorf("3 events behind with MaxLag 2: %v", err)
	}
}

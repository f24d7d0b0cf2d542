package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestForgetErasesPersonalDataEverywhere: issue 6 point 4, through the real
// `ledger serve`, its API and the CLI. A member's profile is recorded with
// distinctive strings, HR forgets the member, and then: the directory and
// the member history show the profile as erased; `ledger verify` passes;
// `ledger export` holds none of the strings; no database file of the data
// folder (nor its WAL) holds them; the member's activities, sales and
// leaderboard rows are intact.
func TestForgetErasesPersonalDataEverywhere(t *testing.T) {
	dir := t.TempDir()
	admin, stop := startServe(t, dir)
	base := admin.base
	must := func(c apiClient, method, path, body string, want int) map[string]any {
		t.Helper()
		code, out := c.do(method, path, body)
		if code != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, code, out, want)
		}
		return out
	}
	must(admin, "POST", "/v1/teams", `{"team_id":"north","name":"North","department":"sales","region":"north"}`, http.StatusCreated)
	for _, m := range []string{"zoe", "hana", "ben"} {
		must(admin, "POST", "/v1/members", fmt.Sprintf(`{"member_id":%q,"display_name":%q,"role":"salesperson","team_id":"north","joined_on":"2026-01-05"}`, m, strings.ToUpper(m)), http.StatusCreated)
	}
	token := func(args ...string) apiClient {
		t.Helper()
		code, out, errText := ledgerCLI(t, append([]string{"token", "create", "--data", dir}, args...)...)
		if code != 0 {
			t.Fatalf("token create %v: %s", args, errText)
		}
		return apiClient{t: t, base: base, token: strings.TrimSpace(out)}
	}
	hr := token("--role", "hr", "--member", "hana")
	auditor := token("--role", "auditor")
	zoe := token("--role", "rep", "--member", "zoe", "--team", "north")

	// Distinctive strings no other part of the ledger could hold.
	secrets := []string{"zoe.quixotic-7f3a@example.test", "+44 7700 900461", "17 Xylophone Mews, Quarkton", "competitive-origami-9c2e"}
	must(hr, "POST", "/v1/members/zoe/profile", fmt.Sprintf(`{"birthday":"1990-04-01","hobbies":[%q],"email":%q,"phone":%q,"address":%q}`,
		secrets[3], secrets[0], secrets[1], secrets[2]), http.StatusCreated)
	now := time.Now().UTC()
	today, month := now.Format(time.RFC3339), now.Format("2006-01")
	must(zoe, "POST", "/v1/members/zoe/activities", `{"kind":"visit","quantity":3,"occurred_at":"`+today+`"}`, http.StatusCreated)
	out := must(zoe, "POST", "/v1/members/zoe/sales", `{"customer":"ACME","amount_minor":250000,"currency":"EUR","occurred_at":"`+today+`"}`, http.StatusCreated)
	pos := out["position"].(string)

	// Before: HR sees the profile; the performance figures are there.
	dirBefore := must(hr, "GET", "/v1/directory?min_position="+pos, "", http.StatusOK)
	if !strings.Contains(fmt.Sprint(dirBefore), secrets[0]) {
		t.Fatalf("HR does not see the profile before the erasure: %v", dirBefore)
	}
	boards := func(pos string) (revenue, points string) {
		t.Helper()
		rv := must(auditor, "GET", "/v1/leaderboards/revenue?period="+month+"&min_position="+pos, "", http.StatusOK)
		ap := must(auditor, "GET", "/v1/leaderboards/activity_points?period="+month+"&min_position="+pos, "", http.StatusOK)
		return rowOf(t, rv, "zoe"), rowOf(t, ap, "zoe")
	}
	revBefore, ptsBefore := boards(pos)
	histBefore := must(auditor, "GET", "/v1/members/zoe/history", "", http.StatusOK)

	beforeForget := time.Now().UTC().Format(time.RFC3339Nano)
	out = must(hr, "POST", "/v1/members/zoe/forget", `{"reason":"right to erasure request"}`, http.StatusCreated)
	pos = out["position"].(string)

	t.Run("directory_and_history_show_erased", func(t *testing.T) {
		d := must(hr, "GET", "/v1/directory?min_position="+pos, "", http.StatusOK)
		found := false
		for _, it := range d["items"].([]any) {
			m := it.(map[string]any)
			if m["member_id"] == "zoe" {
				found = true
				if m["erased"] != true || m["profile"] != nil {
					t.Errorf("directory after erasure: %v", m)
				}
			}
		}
		if !found {
			t.Errorf("zoe left the directory: %v", d)
		}
		h := must(hr, "GET", "/v1/members/zoe/history", "", http.StatusOK)
		erased := false
		for _, it := range h["items"].([]any) {
			m := it.(map[string]any)
			if m["type"] == "MemberProfileRecorded.v1" {
				data := m["data"].(map[string]any)
				erased = data["erased"] == true && data["profile"] == nil
			}
		}
		if !erased {
			t.Errorf("history after erasure does not show the profile erased: %v", h)
		}
		for _, s := range secrets {
			if strings.Contains(fmt.Sprint(d, h), s) {
				t.Errorf("%q is still served", s)
			}
		}
	})
	t.Run("as_of_before_the_erasure_shows_erased_too", func(t *testing.T) {
		// The replayed read models hold the ciphertext; the key is gone.
		d := must(hr, "GET", "/v1/directory?as_of="+beforeForget, "", http.StatusOK)
		h := must(hr, "GET", "/v1/members/zoe/history?as_of="+beforeForget, "", http.StatusOK)
		for _, s := range secrets {
			if strings.Contains(fmt.Sprint(d, h), s) {
				t.Errorf("as of before the erasure, %q is served", s)
			}
		}
		if !strings.Contains(fmt.Sprint(d), "erased:true") {
			t.Errorf("directory as of before the erasure: %v", d)
		}
	})
	t.Run("performance_history_intact", func(t *testing.T) {
		rev, pts := boards(pos)
		if rev != revBefore || pts != ptsBefore || rev == "" || pts == "" {
			t.Errorf("zoe's rows: revenue %q → %q, activity points %q → %q", revBefore, rev, ptsBefore, pts)
		}
		h := must(auditor, "GET", "/v1/members/zoe/history", "", http.StatusOK)
		types := func(h map[string]any) []string {
			var ts []string
			for _, it := range h["items"].([]any) {
				ts = append(ts, it.(map[string]any)["type"].(string))
			}
			return ts
		}
		before, after := types(histBefore), types(h)
		if len(after) != len(before)+1 || !strings.Contains(strings.Join(after, " "), "ActivityLogged") || !strings.Contains(strings.Join(after, " "), "SaleClosed") {
			t.Errorf("history before %v, after %v", before, after)
		}
	})

	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	t.Run("verify_passes", func(t *testing.T) {
		code, out, errText := ledgerCLI(t, "verify", "--data", dir)
		if code != 0 || !strings.Contains(out, "ok:") {
			t.Errorf("verify after erasure: %d %s %s", code, out, errText)
		}
	})
	t.Run("export_holds_no_plaintext", func(t *testing.T) {
		code, out, errText := ledgerCLI(t, "export", "--data", dir)
		if code != 0 || !strings.Contains(out, "MemberProfileRecorded") {
			t.Fatalf("export: %d %s", code, errText)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the export holds %q", s)
			}
		}
	})
	t.Run("database_files_hold_no_plaintext", func(t *testing.T) {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, s := range secrets {
				if bytes.Contains(raw, []byte(s)) {
					t.Errorf("%s holds %q", filepath.Base(path), s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"events.db", "views.db", "views-leaderboard.db", "keys.db", "api.db"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("%s was not searched: %v", name, err)
			}
		}
		if files < 5 {
			t.Errorf("only %d files searched", files)
		}
	})
}

// rowOf returns the value of subject's row in a leaderboard answer.
func rowOf(t testing.TB, board map[string]any, subject string) string {
	t.Helper()
	items, _ := board["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		if m["subject_id"] == subject {
			b, _ := json.Marshal(m["value"])
			return string(b)
		}
	}
	return ""
}

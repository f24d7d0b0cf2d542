package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"perfledger/domain"
)

// TestVerifyDigest: the API's verification gives the ledger digest and
// position, and digest=D&at=P proves the ledger up to P unchanged.
func TestVerifyDigest(t *testing.T) {
	var log EventLog
	e := newEnv(t, func(c *Config) {
		log = c.Log
		c.Log = &tampered{EventLog: c.Log}
	})
	get := func(query string) (verifyReport, response) {
		t.Helper()
		res := e.do(t, "auditor", "GET", "/v1/audit/verify"+query, nil, nil)
		var r verifyReport
		if res.status == http.StatusOK {
			res.decode(t, &r)
		}
		return r, res
	}
	// The digest computed independently, straight from the stored hashes.
	var d domain.Digest
	var last, sale domain.Position
	for ev, err := range log.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Add(ev.Hash); err != nil {
			t.Fatal(err)
		}
		last = ev.Position
		if ev.Type == domain.TypeSaleClosed && sale.IsZero() {
			sale = ev.Position
		}
	}
	r, res := get("")
	if res.status != http.StatusOK || !r.OK || r.Digest != d.Root() || r.Position != last.String() {
		t.Fatalf("verify: %d %s; want digest %s at %s", res.status, res.body, d.Root(), last)
	}
	at, digest := r.Position, r.Digest

	t.Run("digest_still_holds_after_more_events", func(t *testing.T) {
		e.exec(t, domain.LogActivity{ActivityID: fresh("a"), MemberID: "rui", Kind: "call", Quantity: 1,
			OccurredAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
		r, res := get("?digest=" + digest + "&at=" + at)
		if res.status != http.StatusOK || !r.OK || r.DigestMatches == nil || !*r.DigestMatches || r.Position != at {
			t.Fatalf("%d %s", res.status, res.body)
		}
		if whole, _ := get(""); whole.Digest == digest {
			t.Error("the digest of the longer log equals the old one")
		}
	})
	t.Run("wrong_digest_does_not_match", func(t *testing.T) {
		// Another first hex digit (a fixed "00" prefix matched the one
		// digest in 256 that starts with it).
		first := "0"
		if digest[0] == '0' {
			first = "1"
		}
		other := first + digest[1:]
		r, res := get("?digest=" + other + "&at=" + at)
		if res.status != http.StatusOK || r.OK || r.DigestMatches == nil || *r.DigestMatches {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	t.Run("tampering_before_at_is_caught", func(t *testing.T) {
		e.api.cfg.Log.(*tampered).at = sale
		defer func() { e.api.cfg.Log.(*tampered).at = domain.Position{} }()
		r, res := get("?digest=" + digest + "&at=" + at)
		if res.status != http.StatusOK || r.OK || r.Broken == nil || r.Digest != "" {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
	t.Run("bad_queries_are_400", func(t *testing.T) {
		for _, q := range []string{"?digest=" + digest, "?at=nope", "?at=999999"} {
			if _, res := get(q); res.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, res.status, res.body)
			}
		}
	})
}

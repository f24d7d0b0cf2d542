package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"perfledger/adapters/esdb/esdbtest"
)

// TestTwoNodesOnOneEventStoreDB: two ledger nodes, each with its own read
// models, on one EventStoreDB (the in-process protocol server); a write on
// one is readable on the other with min_position.
func TestTwoNodesOnOneEventStoreDB(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	a, _ := startServe(t, t.TempDir(), "--store", srv.URL())
	b, _ := startServe(t, t.TempDir(), "--store", srv.URL())

	code, out := a.do("POST", "/v1/teams", `{"team_id":"south","name":"South","department":"sales","region":"south"}`)
	if code != http.StatusCreated {
		t.Fatalf("create team on node A: %d %v", code, out)
	}
	code, out = a.do("POST", "/v1/members", `{"member_id":"eva","display_name":"Eva","role":"salesperson","team_id":"south","joined_on":"2026-01-05"}`)
	if code != http.StatusCreated {
		t.Fatalf("create member on node A: %d %v", code, out)
	}
	pos, _ := out["position"].(string)
	code, out = b.do("GET", "/v1/directory?min_position="+pos, "")
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(out), "eva") {
		t.Fatalf("node B directory with min_position=%s: %d %v", pos, code, out)
	}
	// And the other way round: B writes, A reads.
	code, out = b.do("POST", "/v1/members", `{"member_id":"leo","display_name":"Leo","role":"salesperson","team_id":"south","joined_on":"2026-01-05"}`)
	if code != http.StatusCreated {
		t.Fatalf("create member on node B: %d %v", code, out)
	}
	pos, _ = out["position"].(string)
	code, out = a.do("GET", "/v1/directory?min_position="+pos, "")
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(out), "leo") {
		t.Fatalf("node A directory with min_position=%s: %d %v", pos, code, out)
	}
}

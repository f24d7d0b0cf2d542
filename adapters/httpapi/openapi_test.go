package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPIMatchesRouter walks the chi router and checks that every routed
// API path is documented and every documented path is routed.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "", http.MethodGet, "/v1/openapi.json", nil, nil)
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d", res.status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(res.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	routed := map[string]bool{}
	err := chi.Walk(e.api.router, func(method, path string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.json" {
			return nil // health, readiness, metrics and the document itself
		}
		routed[method+" "+path] = true
		if !documented(doc.Paths, method, path) {
			t.Errorf("%s %s is routed but not in the OpenAPI document", method, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			n++
			if !routed[strings.ToUpper(method)+" "+path] {
				t.Errorf("%s %s is documented but not routed", strings.ToUpper(method), path)
			}
		}
	}
	if n != len(routed) || n < 30 {
		t.Errorf("%d documented operations, %d routed; want equal and at least 30", n, len(routed))
	}
}

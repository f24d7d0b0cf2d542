package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
)

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring of the message; "" = success
	}{
		{"a valid body decodes", `{"kind":"visit","quantity":3}`, ""},
		{"an unknown field is refused", `{"kind":"visit","quantity":3,"colour":"red"}`, `unknown field "colour"`},
		{"a wrong type names the field", `{"kind":"visit","quantity":"three"}`, `field "quantity": want an integer`},
		{"a fraction for an integer is refused", `{"kind":"visit","quantity":1.5}`, `field "quantity"`},
		{"two values are refused", `{"kind":"visit"}{"kind":"call"}`, "single JSON value"},
		{"trailing garbage is refused", `{"kind":"visit"} x`, "single JSON value"},
		{"malformed JSON says where", `{"kind":`, "ends too early"},
		{"a syntax error says where", `{"kind" "visit"}`, "malformed JSON at byte"},
		{"an empty body is refused", ``, "empty"},
		{"an array is not an object", `[1,2]`, "must be a JSON"},
		{"a bad time is refused", `{"occurred_at":"yesterday"}`, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v activityRequest
			err := decodeStrict([]byte(tt.body), &v)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Code != codeInvalid {
				t.Fatalf("err = %v, want an invalid apiError", err)
			}
			if !strings.Contains(ae.Message, tt.wantErr) {
				t.Errorf("message %q does not contain %q", ae.Message, tt.wantErr)
			}
		})
	}
}

// requestTypes is one value of every request body type of the route table.
func requestTypes(tb testing.TB) []any {
	tb.Helper()
	s := &Server{}
	var out []any
	seen := map[reflect.Type]bool{}
	for _, rt := range s.routeTable() {
		if rt.body == nil || seen[reflect.TypeOf(rt.body)] {
			continue
		}
		seen[reflect.TypeOf(rt.body)] = true
		out = append(out, rt.body)
	}
	return out
}

// FuzzDecoders feeds arbitrary bodies to the strict decoder of every request
// type: it must never panic, must fail with an invalid-input apiError or
// succeed, and what it accepts must survive a round trip.
func FuzzDecoders(f *testing.F) {
	seeds := []string{
		`{}`, `{"kind":"visit","quantity":3}`, `{"amount_minor":-5,"currency":"EUR","customer":"x"}`,
		`{"value":"12.5","period":"2026-W47","kpi":"visits","subject_kind":"member","subject_id":"m"}`,
		`{"rating":9,"week":"2026-W99"}`, `{"occurred_at":"2026-11-20T10:00:00Z"}`, `{"roles":["a","b"]}`,
		`{"kpis":[{"kpi":"visits","weight":"0.2","cap":"1.5","direction":"higher"}]}`, `null`, `[]`, `"x"`,
		`{"quantity":1e400}`, `{"value":"1e5"}`, `{"a":1}{"b":2}`, "\x00", `{"name":"\ud800"}`,
	}
	for i := range len(requestTypes(f)) {
		for _, s := range seeds {
			f.Add(i, []byte(s))
		}
	}
	types := requestTypes(f)
	f.Fuzz(func(t *testing.T, which int, body []byte) {
		if which < 0 {
			which = -which
		}
		typ := reflect.TypeOf(types[which%len(types)])
		v := reflect.New(typ)
		err := decodeStrict(body, v.Interface())
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Code != codeInvalid || ae.Message == "" {
				t.Fatalf("decode error %v is not an invalid-input apiError", err)
			}
			return
		}
		again, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatalf("accepted value does not encode: %v", err)
		}
		w := reflect.New(typ)
		if err := decodeStrict(again, w.Interface()); err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
	})
}

func TestEncodeCSV(t *testing.T) {
	type row struct {
		Name   string       `json:"name"`
		Amount int64        `json:"amount_minor"`
		Score  domain.Fixed `json:"score"`
		When   time.Time    `json:"when"`
		Tags   []string     `json:"tags,omitempty"`
		Hidden string       `json:"-"`
	}
	rows := []row{
		{Name: "Ana, \"the best\"", Amount: 120050, Score: domain.FixedFromInt(3), When: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), Tags: []string{"a"}},
		{Name: "Bo", Amount: -1},
	}
	var buf bytes.Buffer
	if err := encodeCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	want := "name,amount_minor,score,when,tags\n" +
		"\"Ana, \"\"the best\"\"\",120050,3.0000,2026-11-20T10:00:00Z,\"[\"\"a\"\"]\"\n" +
		"Bo,-1,0.0000,,null\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
}

func TestPaginate(t *testing.T) {
	items := []int{1, 2, 3, 4, 5}
	var got []int
	cursor, pages := "", 0
	for {
		page, next, err := paginate(items, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if diff := cmp.Diff(items, got); diff != "" || pages != 3 {
		t.Errorf("pages=%d (-want +got):\n%s", pages, diff)
	}
	if _, _, err := paginate(items, "garbage!", 2); err == nil {
		t.Error("a forged cursor must be refused")
	}
}

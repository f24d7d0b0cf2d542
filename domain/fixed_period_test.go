package domain

import (
	"encoding/json"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestFixedParseAndFormat(t *testing.T) {
	for _, tc := range []struct {
		in, want, round2 string
	}{
		{"100.217", "100.2170", "100.22"},
		{"0.2", "0.2000", "0.20"},
		{"-3", "-3.0000", "-3.00"},
		{"100.5425", "100.5425", "100.54"},
		{"0.125", "0.1250", "0.12"}, // half-even
		{"0.135", "0.1350", "0.14"},
	} {
		f, err := ParseFixed(tc.in)
		if err != nil {
			t.Fatalf("ParseFixed(%q): %v", tc.in, err)
		}
		if got := f.String(); got != tc.want {
			t.Errorf("ParseFixed(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		if got := f.Round2(); got != tc.round2 {
			t.Errorf("ParseFixed(%q).Round2() = %q, want %q", tc.in, got, tc.round2)
		}
	}
	for _, bad := range []string{"", "1.23456", "abc", "1.2.3", "--1", "1e5", ".5", "+-1"} {
		if _, err := ParseFixed(bad); err == nil {
			t.Errorf("ParseFixed(%q) accepted a malformed decimal", bad)
		}
	}
}

func TestFixedJSONRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := Fixed(rapid.Int64Range(-1e15, 1e15).Draw(t, "f"))
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var back Fixed
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if back != f {
			t.Fatalf("round trip %d → %s → %d", f, b, back)
		}
	})
}

func TestParsePeriod(t *testing.T) {
	for _, tc := range []struct {
		in         string
		kind       PeriodKind
		start, end string
	}{
		{"2026-W47", PeriodWeek, "2026-11-16", "2026-11-23"},
		{"2026-W01", PeriodWeek, "2025-12-29", "2026-01-05"},
		{"2026-W53", PeriodWeek, "2026-12-28", "2027-01-04"},
		{"2026-11", PeriodMonth, "2026-11-01", "2026-12-01"},
		{"2026-Q4", PeriodQuarter, "2026-10-01", "2027-01-01"},
		{"2026", PeriodYear, "2026-01-01", "2027-01-01"},
	} {
		p, err := ParsePeriod(tc.in)
		if err != nil {
			t.Fatalf("ParsePeriod(%q): %v", tc.in, err)
		}
		if p.Kind != tc.kind || p.String() != tc.in {
			t.Errorf("ParsePeriod(%q) = %v %q", tc.in, p.Kind, p.String())
		}
		if got := p.Start().Format(time.DateOnly); got != tc.start {
			t.Errorf("%s start = %s, want %s", tc.in, got, tc.start)
		}
		if got := p.End().Format(time.DateOnly); got != tc.end {
			t.Errorf("%s end = %s, want %s", tc.in, got, tc.end)
		}
	}
	for _, bad := range []string{"", "26", "2026-13", "2026-00", "2026-Q5", "2026-Q0", "2025-W53",
		"2026-W54", "2026-W00", "2026-1", "2026-W7", "2026/11", "2026-11-01", "abcd", "2026-Q"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) accepted a malformed period", bad)
		}
	}
}

func TestPeriodOfContainsItself(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ts := time.Unix(rapid.Int64Range(0, 4e9).Draw(t, "t"), 0).UTC()
		for k := PeriodWeek; k <= PeriodYear; k++ {
			p := PeriodOf(k, ts)
			if !p.Contains(ts) {
				t.Fatalf("%s does not contain %s", p, ts)
			}
			back, err := ParsePeriod(p.String())
			if err != nil || back != p {
				t.Fatalf("%s does not round-trip: %v %v", p, back, err)
			}
		}
	})
}

func TestWorkingDays(t *testing.T) {
	nov, _ := ParsePeriod("2026-11")
	if got := nov.WorkingDaysIn(); got != 21 {
		t.Errorf("working days in 2026-11 = %d, want 21", got)
	}
	w, _ := ParsePeriod("2026-W47")
	if got := w.WorkingDaysIn(); got != 5 {
		t.Errorf("working days in a week = %d, want 5", got)
	}
}

func TestChainVerifierCatchesTampering(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var evs []Event
	prev := ""
	for i := 0; i < 3; i++ {
		e := Event{ID: EventID("cmd-1", i), Type: "ActivityLogged.v1", Stream: "member-1", Revision: uint64(i),
			Data: []byte(`{"q":1}`), OccurredAt: at, RecordedAt: at.Add(time.Second), Actor: "admin"}
		Seal(prev, &e)
		prev = e.Hash
		evs = append(evs, e)
	}
	v := NewChainVerifier()
	for i := range evs {
		if err := v.Check(&evs[i]); err != nil {
			t.Fatalf("intact chain: %v", err)
		}
	}
	tamper := map[string]func(e []Event){
		"payload changed":  func(e []Event) { e[1].Data = []byte(`{"q":2}`) },
		"time changed":     func(e []Event) { e[1].RecordedAt = e[1].RecordedAt.Add(time.Nanosecond) },
		"event deleted":    func(e []Event) { e[1] = e[2] },
		"events swapped":   func(e []Event) { e[1], e[2] = e[2], e[1] },
		"revision changed": func(e []Event) { e[2].Revision = 5 },
	}
	for name, f := range tamper {
		t.Run(name+" is caught", func(t *testing.T) {
			c := append([]Event(nil), evs...)
			f(c)
			v := NewChainVerifier()
			var err error
			for i := range c {
				if err = v.Check(&c[i]); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatal("tampering not detected")
			}
		})
	}
}

func TestEventIDDeterministic(t *testing.T) {
	a, b := EventID("cmd", 0), EventID("cmd", 0)
	if a != b || !IsUUID(a) {
		t.Fatalf("EventID not deterministic or not a UUID: %s %s", a, b)
	}
	if EventID("cmd", 1) == a || EventID("cmd2", 0) == a {
		t.Fatal("EventID collides across index or command")
	}
	if id := NewID(); !IsUUID(id) || id[14] != '7' {
		t.Fatalf("NewID = %s, want a UUIDv7", id)
	}
}

package esdb

import (
	"encoding/json"
	"testing"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
)

func sampleEvent() domain.Event {
	e := domain.Event{
		ID:            "0193a4b2-7c1d-7e0f-8a9b-0123456789ab",
		Type:          "ActivityLogged.v1",
		Stream:        "member-1",
		Revision:      41,
		Data:          []byte(`{"n":1}`),
		OccurredAt:    time.Date(2026, 11, 27, 9, 30, 0, 123456789, time.UTC),
		RecordedAt:    time.Date(2026, 11, 27, 9, 31, 0, 0, time.UTC),
		Actor:         "user:zoë <admin> & co",
		CorrelationID: "corr-ß-😀",
		CausationID:   "",
	}
	domain.Seal("ab12", &e)
	return e
}

func TestEnvelopeFastPathAgreesWithJSON(t *testing.T) {
	ed, err := encode(ptr(sampleEvent()))
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{
		"written_by_encode":  string(ed.Metadata),
		"spaces":             ` { "occurred_at" : "2026-01-02T03:04:05.000000006Z" , "revision" : 7 , "hash" : "h" } `,
		"escaped_string":     `{"actor":"a\"b","revision":1}`,
		"unknown_field":      `{"other":"x","revision":1}`,
		"negative_revision":  `{"revision":-1}`,
		"offset_time":        `{"occurred_at":"2026-01-02T03:04:05+02:00","revision":0}`,
		"truncated":          `{"actor":"a"`,
		"huge_revision":      `{"revision":184467440737095516150}`,
		"max_revision":       `{"revision":18446744073709551615}`,
		"empty_object":       `{}`,
		"trailing_garbage":   `{"revision":1}x`,
		"control_in_string":  "{\"actor\":\"a\tb\"}",
		"not_json":           `nope`,
		"number_as_string":   `{"revision":"1"}`,
		"null_actor":         `{"actor":null}`,
		"bad_time":           `{"occurred_at":"yesterday"}`,
		"unicode_raw":        `{"actor":"東京🚀","revision":3}`,
		"duplicate_key_last": `{"actor":"a","actor":"b"}`,
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			checkEnvelope(t, []byte(in))
		})
	}
}

func ptr[T any](v T) *T { return &v }

// checkEnvelope: whenever the fast path accepts b, it must decode exactly
// what encoding/json decodes.
func checkEnvelope(t *testing.T, b []byte) {
	t.Helper()
	var fast envelope
	if !fast.parse(b) {
		return
	}
	var want envelope
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", b, err)
	}
	if diff := cmp.Diff(want, fast); diff != "" {
		t.Errorf("fast path on %q (-json +fast):\n%s", b, diff)
	}
}

func FuzzEnvelope(f *testing.F) {
	ed, err := encode(ptr(sampleEvent()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ed.Metadata)
	f.Add([]byte(`{"revision":1,"actor":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkEnvelope(t, b) })
}

func TestDecodeRoundTrip(t *testing.T) {
	want := sampleEvent()
	ed, err := encode(&want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(recorded(want, ed))
	if err != nil {
		t.Fatal(err)
	}
	want.Position = domain.Position{Commit: 100, Prepare: 180}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decode(encode(e)) (-want +got):\n%s", diff)
	}
	if h := domain.ChainHash(got.PrevHash, &got); h != got.Hash {
		t.Errorf("decoded event hashes to %s, stored hash %s", h, got.Hash)
	}
}

// recorded is what the client hands back for an event written as ed.
func recorded(e domain.Event, ed client.EventData) *client.RecordedEvent {
	return &client.RecordedEvent{
		EventID:      ed.EventID,
		EventType:    ed.EventType,
		StreamID:     e.Stream,
		EventNumber:  e.Revision,
		Position:     client.Position{Commit: 100, Prepare: 180},
		Data:         ed.Data,
		UserMetadata: ed.Metadata,
	}
}

// BenchmarkEnvelope compares the metadata fast path with encoding/json.
func BenchmarkEnvelope(b *testing.B) {
	ed, err := encode(ptr(sampleEvent()))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var env envelope
			if !env.parse(ed.Metadata) {
				b.Fatal("fast path refused the metadata encode wrote")
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var env envelope
			if err := json.Unmarshal(ed.Metadata, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
}

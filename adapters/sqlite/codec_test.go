package sqlite

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
)

func sealed(e domain.Event) domain.Event {
	domain.Seal(e.PrevHash, &e)
	return e
}

func TestMetaRoundTrip(t *testing.T) {
	base := domain.Event{
		ID: domain.NewID(), Type: "ActivityLogged.v1", Stream: "s", Revision: 3,
		OccurredAt: time.Date(2026, 11, 27, 9, 1, 2, 123456789, time.UTC),
		RecordedAt: time.Date(2026, 11, 27, 9, 1, 3, 5, time.UTC),
		Actor:      "user:zoë", CorrelationID: "c", CausationID: "",
		PrevHash: domain.ChainHash("", &domain.Event{}),
	}
	cases := map[string]func(e *domain.Event){
		"typical_event":           func(*domain.Event) {},
		"first_event_of_a_stream": func(e *domain.Event) { e.PrevHash = "" },
		"zero_occurred_at":        func(e *domain.Event) { e.OccurredAt = time.Time{} },
		"time_before_1678":        func(e *domain.Event) { e.OccurredAt = time.Date(1200, 1, 1, 0, 0, 0, 7, time.UTC) },
		"time_after_2262":         func(e *domain.Event) { e.RecordedAt = time.Date(3000, 1, 1, 0, 0, 0, 999, time.UTC) },
		"long_strings":            func(e *domain.Event) { e.Actor = string(make([]byte, 70000)) },
	}
	for name, change := range cases {
		t.Run(name+"_round_trips", func(t *testing.T) {
			want := base
			change(&want)
			want = sealed(want)
			var got domain.Event
			if err := newMetaReader().decode(encodeMeta(nil, &want), &got); err != nil {
				t.Fatal(err)
			}
			got.Stream, got.Revision = want.Stream, want.Revision // not in meta
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("decode(encode(e)) differs (-want +got):\n%s", diff)
			}
			if chainHashOf(got) != got.Hash {
				t.Errorf("decoded event no longer hashes to its Hash")
			}
		})
	}
}

func chainHashOf(e domain.Event) string { return domain.ChainHash(e.PrevHash, &e) }

func TestMetaRejectsCorruption(t *testing.T) {
	e := sealed(domain.Event{ID: domain.NewID(), Type: "T.v1"})
	b := encodeMeta(nil, &e)
	for _, bad := range [][]byte{nil, {2}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		var got domain.Event
		if err := newMetaReader().decode(bad, &got); err == nil {
			t.Errorf("decode(%d bytes) = nil error, want errBadMeta", len(bad))
		}
	}
}

func FuzzMetaDecode(f *testing.F) {
	e := sealed(domain.Event{ID: domain.NewID(), Type: "T.v1", Actor: "a", OccurredAt: time.Unix(5, 6)})
	f.Add(encodeMeta(nil, &e))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got domain.Event
		if err := newMetaReader().decode(b, &got); err != nil {
			return
		}
		// Whatever decodes survives a re-encoding unchanged.
		var again domain.Event
		if err := newMetaReader().decode(encodeMeta(nil, &got), &again); err != nil {
			t.Fatalf("re-encoded meta does not decode: %v", err)
		}
		if diff := cmp.Diff(got, again, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("decode(encode(decode(b))) differs:\n%s", diff)
		}
	})
}

package domain

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"
)

type sliceReader []Event

func (s sliceReader) ReadAll(_ context.Context, after Position) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for _, e := range s {
			if after.Less(e.Position) && !yield(e, nil) {
				return
			}
		}
	}
}

// sealedLog returns n events over three streams, chained and sealed.
func sealedLog(n int) sliceReader {
	var out sliceReader
	tips := map[string]string{}
	revs := map[string]uint64{}
	for i := 1; i <= n; i++ {
		s := fmt.Sprintf("member-%d", i%3)
		e := Event{ID: EventID(fmt.Sprint("c", i), 0), Type: "ActivityLogged.v1", Stream: s, Revision: revs[s],
			Position: Seq(uint64(i)), Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			OccurredAt: time.Unix(int64(i), 0).UTC(), RecordedAt: time.Unix(int64(i), 0).UTC()}
		Seal(tips[s], &e)
		tips[s], revs[s] = e.Hash, revs[s]+1
		out = append(out, e)
	}
	return out
}

func TestVerifyLog(t *testing.T) {
	ctx := context.Background()
	log := sealedLog(10)
	digestOf := func(es []Event) string {
		var d Digest
		for _, e := range es {
			if err := d.Add(e.Hash); err != nil {
				t.Fatal(err)
			}
		}
		return d.Root()
	}
	t.Run("whole_log", func(t *testing.T) {
		v, err := VerifyLog(ctx, log, Position{})
		if err != nil || v.Events != 10 || v.Streams != 3 || v.Last != Seq(10) || v.Digest != digestOf(log) {
			t.Errorf("%+v, %v", v, err)
		}
	})
	t.Run("up_to_a_position", func(t *testing.T) {
		v, err := VerifyLog(ctx, log, Seq(6))
		if err != nil || v.Events != 6 || v.Last != Seq(6) || v.Digest != digestOf(log[:6]) {
			t.Errorf("%+v, %v", v, err)
		}
	})
	t.Run("no_event_at_the_position", func(t *testing.T) {
		if _, err := VerifyLog(ctx, log, Seq(11)); !errors.Is(err, ErrNoSuchPosition) {
			t.Errorf("err %v, want ErrNoSuchPosition", err)
		}
	})
	t.Run("tampered_event_is_the_broken_link", func(t *testing.T) {
		bad := append(sliceReader(nil), log...)
		bad[4].Data = []byte(`{"n":500}`)
		v, err := VerifyLog(ctx, bad, Position{})
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Stream != bad[4].Stream || ce.Revision != bad[4].Revision || ce.Field != "hash" || v.Events != 4 || v.Digest != "" {
			t.Errorf("%+v, %v", v, err)
		}
	})
}

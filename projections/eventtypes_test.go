package projections_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// TestTypeFiltersLoseNothing shows that a read model fed only the event
// types it declares (projections.TypeFilter), plus the last event of each
// batch as the bus does, ends with the same rows as one fed every event:
// over the golden logs of every read model, and over a demo log.
func TestTypeFiltersLoseNothing(t *testing.T) {
	demo := demoSliceLog(t, 12, 3)
	var demoEvents []projections.Envelope
	for _, e := range demo.events {
		pl, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		demoEvents = append(demoEvents, projections.Envelope{Event: e, Payload: pl})
	}
	logs := map[string][]projections.Envelope{"golden": allGoldenEvents(t), "demo": demoEvents}
	filtered := 0
	for logName, events := range logs {
		for _, f := range append(projections.All(), projections.PolicyFacts) {
			p := f("")
			if _, ok := p.(projections.TypeFilter); !ok {
				continue
			}
			t.Run(logName+"/"+p.Name(), func(t *testing.T) {
				db := goldenDB(t)
				all, some := f("all_"), f("some_")
				goldenTx(t, db, func(tx *sql.Tx) error { return all.Setup(context.Background(), tx) })
				goldenTx(t, db, func(tx *sql.Tx) error { return some.Setup(context.Background(), tx) })
				skipped := 0
				for batch := range slices.Chunk(events, 50) {
					var handled []projections.Envelope
					for i, e := range batch {
						if projections.Handles(some, e.Type) || i == len(batch)-1 {
							handled = append(handled, e)
						} else {
							skipped++
						}
					}
					goldenTx(t, db, func(tx *sql.Tx) error { return all.Apply(context.Background(), tx, batch) })
					goldenTx(t, db, func(tx *sql.Tx) error { return some.Apply(context.Background(), tx, handled) })
				}
				if skipped == 0 {
					t.Fatalf("no event of the %d was skipped: the test shows nothing", len(events))
				}
				filtered++
				want, got := projectionstest.Tables(t, db, "all_"), projectionstest.Tables(t, db, "some_")
				if len(want) == 0 {
					t.Fatal("no table found")
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("tables differ when fed only the types it handles (-all +filtered):\n%s", diff)
				}
			})
		}
	}
	if filtered < 2*7 {
		t.Errorf("%d read models × logs filtered, want at least 14", filtered)
	}
}

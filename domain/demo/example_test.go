package demo_test

import (
	"context"
	"fmt"
	"time"

	"perfledger/domain"
	"perfledger/domain/demo"
)

// A sequential run through a command service whose clock follows the
// simulation.
func ExampleGenerate() {
	clock := &demo.Clock{}
	svc := domain.NewService(newMemStore(), domain.NewMemKeys(), clock.Now)
	cfg := demo.Config{
		Members: 8, Months: 1, Seed: 1,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Step:  func(now time.Time) error { clock.Set(now); return nil },
	}
	finalized := 0
	err := demo.Generate(cfg, func(cmd domain.Command, meta domain.CommandMeta) error {
		if _, ok := cmd.(domain.FinalizeEvaluation); ok {
			finalized++
		}
		_, err := svc.Execute(context.Background(), cmd, meta)
		return err
	})
	fmt.Println(finalized, "evaluations finalized; error:", err)
	// Output: 6 evaluations finalized; error: <nil>
}

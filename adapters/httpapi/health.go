package httpapi

import (
	"context"
	"fmt"
	"strings"

	"perfledger/domain"
	"perfledger/projections"
)

// HeadFunc returns the position of the last event of the log (zero when
// the log is empty).
type HeadFunc func(ctx context.Context) (domain.Position, error)

// RunnerHealth turns the projection runner's state into readiness and lag:
// it implements Readiness (for /readyz) and LagSource (for /metrics).
type RunnerHealth struct {
	// Runner reports each projection's position; *projections.Runner.
	Runner interface{ Positions() []projections.Status }
	// Head returns the head of the log.
	Head HeadFunc
	// MaxLag is how many events a projection may be behind the head and
	// still count as caught up; 0 means 1000.
	MaxLag uint64
}

var (
	_ Readiness = RunnerHealth{}
	_ LagSource = RunnerHealth{}
)

// Ready is nil when no projection is stuck and each is within MaxLag of the
// head; otherwise the error names them.
func (h RunnerHealth) Ready(ctx context.Context) error {
	head, err := h.Head(ctx)
	if err != nil {
		return fmt.Errorf("read the head of the log: %w", err)
	}
	max := h.MaxLag
	if max == 0 {
		max = 1000
	}
	var bad []string
	for _, s := range h.Runner.Positions() {
		switch behind := s.Behind(head); {
		case !s.Healthy:
			bad = append(bad, fmt.Sprintf("%s stuck at %s", s.Name, s.StuckAt))
		case behind > max:
			bad = append(bad, fmt.Sprintf("%s %d behind", s.Name, behind))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("projections not caught up: %s", strings.Join(bad, ", "))
	}
	return nil
}

// Lags reports each projection's distance to the head (none when the head
// cannot be read).
func (h RunnerHealth) Lags(ctx context.Context) []ProjectorLag {
	head, err := h.Head(ctx)
	if err != nil {
		return nil
	}
	st := h.Runner.Positions()
	out := make([]ProjectorLag, 0, len(st))
	for _, s := range st {
		out = append(out, ProjectorLag{Name: s.Name, Events: float64(s.Behind(head))})
	}
	return out
}

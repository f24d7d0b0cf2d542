package demo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"perfledger/domain"
)

// Exec executes one command, typically (*domain.Service).Execute with its
// result dropped.
type Exec func(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error

// Stats summarises a Run.
type Stats struct {
	Commands int // commands generated (all of them executed when Run returns nil)
	Steps    int // steps of the simulation
}

// Run generates cfg and executes its commands on workers goroutines (at least
// one), honouring the step contract of the package documentation: the
// commands of a step are partitioned by Key, each partition runs in emit
// order on one worker, and a step starts only when the previous one has
// completed. Before a step's commands run, clock (when not nil) is set to
// the step's time; give the same clock's Now to the domain.Service behind
// exec. cfg.Step, when set, is still called at every step, after the clock
// is set.
//
// Run stops at the first error of exec (or when ctx ends) and returns it;
// the commands of the failing step that were already running finish first.
func Run(ctx context.Context, cfg Config, workers int, clock *Clock, exec Exec) (Stats, error) {
	if workers < 1 {
		workers = 1
	}
	if exec == nil {
		return Stats{}, errors.New("demo: no exec function")
	}
	var (
		stats  Stats
		queues = make([][]pending, workers)
		mu     sync.Mutex
		failed error
	)
	flush := func() error {
		var wg sync.WaitGroup
		for w := range queues {
			q := queues[w]
			queues[w] = nil
			if len(q) == 0 {
				continue
			}
			wg.Go(func() {
				for _, p := range q {
					err := ctx.Err()
					if err == nil {
						err = exec(ctx, p.cmd, p.meta)
					}
					if err != nil {
						mu.Lock()
						if failed == nil {
							failed = fmt.Errorf("demo: %s (%s): %w", p.cmd.CommandName(), Key(p.cmd), err)
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return failed
	}
	user := cfg.Step
	cfg.Step = func(now time.Time) error {
		if err := flush(); err != nil {
			return err
		}
		stats.Steps++
		if clock != nil {
			clock.Set(now)
		}
		if user != nil {
			return user(now)
		}
		return nil
	}
	err := Generate(cfg, func(cmd domain.Command, meta domain.CommandMeta) error {
		h := fnv.New32a()
		h.Write([]byte(Key(cmd)))
		w := int(h.Sum32() % uint32(workers))
		queues[w] = append(queues[w], pending{cmd: cmd, meta: meta})
		stats.Commands++
		return nil
	})
	if err == nil {
		err = flush()
	}
	if failed != nil && !errors.Is(err, failed) {
		err = failed
	}
	return stats, err
}

type pending struct {
	cmd  domain.Command
	meta domain.CommandMeta
}

package projections

import (
	"context"
	"fmt"
	"slices"

	"perfledger/domain"
)

// Rebuild rebuilds the named projections (all when none is named) into fresh
// instances (a new table prefix, the next generation) by replaying the log
// from its start, while the serving instances keep answering queries and
// following the live flow. Once the fresh instances have caught up with the
// end of the log, Rebuild holds their projections' live writes for a moment,
// applies the last events, and swaps in one transaction (per database, see
// RunnerConfig.Separate): the current prefix
// in projection_current moves to the fresh instance and the old instance's
// tables and checkpoint are dropped. Queries that started before the swap
// finish on the old tables (SQLite readers keep their snapshot).
//
// On error, or when ctx ends, the serving instances are untouched and the
// fresh tables are dropped (or, after a crash, at the next start). Rebuilds
// run one at a time.
func (r *Runner) Rebuild(ctx context.Context, log EventLog, names ...string) error {
	ps, err := r.pick(names)
	if err != nil || len(ps) == 0 {
		return err
	}
	r.rebuild.Lock()
	defer r.rebuild.Unlock()

	fresh := make([]*instance, len(ps))
	for i, p := range ps {
		in, err := r.newInstance(ctx, p)
		if err != nil {
			r.discard(ps[:i], fresh[:i])
			return err
		}
		fresh[i] = in
	}
	// Replay the bulk without holding the live writers.
	if _, err := r.replay(ctx, log, fresh, domain.Position{}); err != nil {
		r.discard(ps, fresh)
		return err
	}
	r.log.Info("rebuild replayed the log; swapping", "projections", len(ps), "first", ps[0].name)

	for _, p := range ps {
		p.apply.Lock()
		defer p.apply.Unlock()
	}
	// The tail appended meanwhile; also reach at least what the serving
	// instances have applied, so the swap never moves a projection back.
	if _, err := r.replay(ctx, log, fresh, domain.Position{}); err != nil {
		r.discard(ps, fresh)
		return err
	}
	r.mu.Lock()
	for i, p := range ps {
		if fresh[i].pos.Less(p.cur.pos) {
			r.mu.Unlock()
			r.discard(ps, fresh)
			return fmt.Errorf("projections: rebuild %s: log ends at %s before the serving instance's checkpoint %s",
				p.name, fresh[i].pos, p.cur.pos)
		}
	}
	r.mu.Unlock()
	if err := r.swap(ctx, ps, fresh); err != nil {
		r.discard(ps, fresh)
		return err
	}
	return nil
}

// newInstance sets up the tables and the zero checkpoint of the next
// generation of p.
func (r *Runner) newInstance(ctx context.Context, p *projection) (*instance, error) {
	r.mu.Lock()
	gen := p.cur.generation + 1
	r.mu.Unlock()
	proj := p.factory(prefixFor(p.name, gen))
	in := &instance{proj: proj, prefix: prefixFor(p.name, gen), version: proj.Version(), generation: gen, file: p.file}
	tx, err := r.beginWrite(ctx, p.file)
	if err != nil {
		return nil, fmt.Errorf("projections: rebuild %s: begin: %w", p.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := dropInstance(ctx, tx.Tx, p.name, in.prefix); err != nil {
		return nil, err
	}
	if err := proj.Setup(ctx, tx.Tx); err != nil {
		return nil, fmt.Errorf("projections: rebuild %s: setup %s: %w", p.name, in.prefix, err)
	}
	if err := writeCheckpoint(ctx, tx.Tx, p.name, in.prefix, in.version, in.pos); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("projections: rebuild %s: commit setup: %w", p.name, err)
	}
	return in, nil
}

// swap makes fresh[i] the serving instance of ps[i], for all i in one
// transaction per database, and drops the old instances. The caller holds
// the projections' apply locks.
func (r *Runner) swap(ctx context.Context, ps []*projection, fresh []*instance) error {
	for _, f := range r.files {
		if err := r.swapIn(ctx, f, ps, fresh); err != nil {
			return err
		}
	}
	r.mu.Lock()
	for i, p := range ps {
		p.cur = fresh[i]
		p.stuck, p.lastErr = false, nil
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return nil
}

// swapIn is swap for the projections of database f.
func (r *Runner) swapIn(ctx context.Context, f *dbFile, ps []*projection, fresh []*instance) error {
	if !slices.ContainsFunc(ps, func(p *projection) bool { return p.file == f }) {
		return nil
	}
	tx, err := r.beginWrite(ctx, f)
	if err != nil {
		return fmt.Errorf("projections: rebuild swap: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for i, p := range ps {
		if p.file != f {
			continue
		}
		in := fresh[i]
		if _, err := tx.ExecContext(ctx,
			`UPDATE projection_current SET prefix = ?, version = ?, generation = ? WHERE name = ?`,
			in.prefix, in.version, in.generation, p.name); err != nil {
			return fmt.Errorf("projections: rebuild %s: swap: %w", p.name, err)
		}
		if err := dropInstance(ctx, tx.Tx, p.name, p.cur.prefix); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: rebuild swap: commit: %w", err)
	}
	return nil
}

// discard drops fresh instances after a failed rebuild, best effort: what it
// cannot drop now goes at the next start.
func (r *Runner) discard(ps []*projection, fresh []*instance) {
	ctx := context.Background()
	for _, f := range r.files {
		if err := r.discardIn(ctx, f, ps, fresh); err != nil {
			r.log.Warn("rebuild: cannot drop the fresh tables now", "error", err)
		}
	}
}

// discardIn is discard for the instances of database f.
func (r *Runner) discardIn(ctx context.Context, f *dbFile, ps []*projection, fresh []*instance) error {
	if !slices.ContainsFunc(fresh, func(in *instance) bool { return in != nil && in.file == f }) {
		return nil
	}
	tx, err := r.beginWrite(ctx, f)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for i, in := range fresh {
		if in == nil || in.file != f {
			continue
		}
		if err := dropInstance(ctx, tx.Tx, ps[i].name, in.prefix); err != nil {
			return err
		}
	}
	return tx.Commit()
}

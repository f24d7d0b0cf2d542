package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"perfledger/domain"
)

type appendReq struct {
	ctx      context.Context
	stream   string
	expected domain.ExpectedRevision
	events   []domain.NewEvent
	reply    chan appendReply
}

type appendReply struct {
	res domain.AppendResult
	err error
}

// tip is what the writer knows of a stream's end.
type tip struct {
	id       int64 // 0: the stream has no row yet
	has      bool  // the stream has at least one event
	last     uint64
	lastHash string
}

// writer is the state owned by the writer goroutine.
type writer struct {
	tips           map[string]tip // committed tips of recently used streams
	nextPos        int64
	nextStream     int64
	dataVersion    int64 // PRAGMA data_version when the caches were last valid; -1: reload
	uncheckpointed int   // bytes committed since the last checkpoint request
	// unrestarted counts the bytes committed since the log was last found
	// wholly copied into the database (after which the next commit writes
	// it from its start again); past walCap the writer checkpoints itself.
	unrestarted int
	meta        []byte

	insertEvent, upsertStream, selectTip, selectIDs, dataVer *sql.Stmt
}

func (w *writer) close() {
	for _, st := range []*sql.Stmt{w.insertEvent, w.upsertStream, w.selectTip, w.selectIDs, w.dataVer} {
		if st != nil {
			st.Close()
		}
	}
}

// maxLinger bounds the time the writer waits for a group to fill.
const maxLinger = 2 * time.Millisecond

// maxTips bounds the writer's cache of stream tips.
const maxTips = 100_000

func (s *Store) prepare(ctx context.Context) error {
	w := &s.w
	w.tips = make(map[string]tip)
	w.dataVersion = -1
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&w.insertEvent, "INSERT INTO events (position, stream_id, revision, meta, data) VALUES (?, ?, ?, ?, ?)"},
		{&w.upsertStream, "INSERT INTO streams (id, name, last_revision, last_hash) VALUES (?, ?, ?, ?) " +
			"ON CONFLICT (id) DO UPDATE SET last_revision = excluded.last_revision, last_hash = excluded.last_hash"},
		{&w.selectTip, "SELECT id, last_revision, last_hash FROM streams WHERE name = ?"},
		{&w.selectIDs, "SELECT position, meta FROM events WHERE stream_id = ? AND revision BETWEEN ? AND ? ORDER BY revision"},
		{&w.dataVer, "PRAGMA data_version"},
	} {
		st, err := s.wdb.PrepareContext(ctx, p.sql)
		if err != nil {
			return err
		}
		*p.st = st
	}
	return s.prepareReads(ctx)
}

// write is the writer goroutine: it takes every pending append, commits
// them in one transaction and answers each.
func (s *Store) write() {
	defer close(s.writerDone)
	var batch []*appendReq
	lastGroup := 1
	var lastCommit time.Duration
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-s.done:
			return
		case r := <-s.reqs:
			batch = append(batch[:0], r)
			n := len(r.events)
			// Writers answered by the previous commit are about to append
			// again: give them a moment to join this group, up to the
			// previous group's size, for at most a quarter of the last
			// commit's duration (the price of one more sync is higher). The
			// writer never yields with runtime.Gosched: that puts it at the
			// end of the scheduler's global queue, and under load every
			// append then waited tens of milliseconds for it.
			more := func(r *appendReq) bool {
				batch = append(batch, r)
				n += len(r.events)
				return len(batch) < lastGroup && n < s.cfg.MaxBatch
			}
		gather:
			for n < s.cfg.MaxBatch {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					n += len(r.events)
				default:
					break gather
				}
			}
			if len(batch) < lastGroup && n < s.cfg.MaxBatch && lastCommit > 0 {
				linger.Reset(min(lastCommit/4, maxLinger))
			wait:
				for {
					select {
					case r := <-s.reqs:
						if !more(r) {
							break wait
						}
					case <-linger.C:
						break wait
					}
				}
				linger.Stop()
			}
			lastGroup = len(batch)
			start := time.Now()
			s.commit(batch)
			lastCommit = time.Since(start)
			s.stats.commits.Add(1)
			s.stats.appends.Add(int64(len(batch)))
			s.stats.events.Add(int64(n))
			clear(batch)
		}
	}
}

// pending is the outcome of one request inside a batch, sent once the
// batch's transaction has committed.
type pending struct {
	req *appendReq
	rep appendReply
}

// commit runs batch in one transaction. Each request's expected revision is
// checked on its own: a conflicting request fails alone. Only a failure of
// the transaction itself fails them all.
func (s *Store) commit(batch []*appendReq) {
	ctx := context.Background() // the batch outlives any one caller's ctx
	w := &s.w
	out := make([]pending, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.reply <- appendReply{err: err}
			continue
		}
		out = append(out, pending{req: r})
	}
	if len(out) == 0 {
		return
	}
	failAll := func(err error) {
		w.dataVersion = -1 // caches may hold uncommitted state: reload
		err = fmt.Errorf("sqlite: append: %w", err)
		for _, p := range out {
			p.req.reply <- appendReply{err: err}
		}
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		failAll(err)
		return
	}
	changed, newNames, err := s.appendAll(ctx, tx, out)
	if err == nil {
		err = tx.Commit()
	} else {
		tx.Rollback() //nolint:errcheck // the batch already failed
	}
	if err != nil {
		failAll(err)
		return
	}
	for name, t := range changed {
		if len(w.tips) >= maxTips {
			clear(w.tips)
		}
		w.tips[name] = t
	}
	for name, id := range newNames {
		s.names.add(id, name)
	}
	for _, p := range out {
		p.req.reply <- p.rep
	}
	if len(changed) > 0 {
		s.broadcast()
	}
	if w.uncheckpointed >= checkpointEvery {
		w.uncheckpointed = 0
		select {
		case s.checkpoint <- struct{}{}:
		default: // one is pending
		}
	}
	if w.unrestarted >= walCap {
		s.boundLog()
	}
}

// walCap is how many bytes of events the writer lets into the write-ahead
// log before it makes sure that the log can start over (boundLog).
const walCap = 12 << 20

// boundLog keeps the write-ahead log from growing without bound when the
// checkpointer falls behind (a starved goroutine, a checkpoint of its still
// running whenever the writer's own automatic one is tried, which then
// gives up at once). It waits for the checkpointer's checkpoint to end and
// checkpoints on the writer's connection: once every frame is copied, the
// next commit writes the log from its start. A reader still using old
// frames can keep it from finishing; it is tried again a quarter of walCap
// later.
func (s *Store) boundLog() {
	w := &s.w
	s.ckMu.Lock()
	defer s.ckMu.Unlock()
	var busy, logFrames, copied int
	err := s.wdb.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
	if err == nil && busy == 0 && copied == logFrames {
		w.unrestarted = 0
		return
	}
	w.unrestarted = walCap - walCap/4
}

// appendAll decides and writes each request of out inside tx, filling in
// its reply. It returns the new tips of the streams it changed and the
// streams it created.
func (s *Store) appendAll(ctx context.Context, tx *sql.Tx, out []pending) (map[string]tip, map[string]int64, error) {
	w := &s.w
	var dv int64
	if err := tx.StmtContext(ctx, w.dataVer).QueryRowContext(ctx).Scan(&dv); err != nil {
		return nil, nil, err
	}
	if dv != w.dataVersion {
		// Another process (or a failed batch) changed the file since the
		// caches were filled.
		clear(w.tips)
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(position), 0) + 1 FROM events").Scan(&w.nextPos); err != nil {
			return nil, nil, err
		}
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) + 1 FROM streams").Scan(&w.nextStream); err != nil {
			return nil, nil, err
		}
		w.dataVersion = dv
	}
	insert := tx.StmtContext(ctx, w.insertEvent)
	selectTip := tx.StmtContext(ctx, w.selectTip)
	selectIDs := tx.StmtContext(ctx, w.selectIDs)
	now := s.cfg.Clock().UTC()
	nextPos, nextStream := w.nextPos, w.nextStream

	changed := make(map[string]tip)
	newNames := make(map[string]int64)
	for i := range out {
		p := &out[i]
		r := p.req
		t, ok := changed[r.stream]
		if !ok {
			t, ok = w.tips[r.stream]
		}
		if !ok {
			var hash []byte
			err := selectTip.QueryRowContext(ctx, r.stream).Scan(&t.id, &t.last, &hash)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				t = tip{}
			case err != nil:
				return nil, nil, err
			default:
				t.has, t.lastHash = true, hexHash(hash)
			}
		}
		res, retried, err := retried(ctx, selectIDs, t, r)
		if err != nil {
			return nil, nil, err
		}
		if retried {
			p.rep.res = res
			continue
		}
		if !r.expected.Matches(t.last, t.has) {
			p.rep.err = fmt.Errorf("sqlite: append: %w", &domain.ConflictError{
				Stream: r.stream, Expected: r.expected, Actual: t.last, HasStream: t.has})
			continue
		}
		if t.id == 0 {
			t.id = nextStream
			nextStream++
			newNames[r.stream] = t.id
		}
		rev := t.last + 1
		if !t.has {
			rev = 0
		}
		for _, ne := range r.events {
			e := domain.Event{
				ID:            ne.ID,
				Type:          ne.Type,
				Stream:        r.stream,
				Revision:      rev,
				Data:          ne.Data,
				OccurredAt:    ne.OccurredAt,
				RecordedAt:    ne.RecordedAt,
				Actor:         ne.Actor,
				CorrelationID: ne.CorrelationID,
				CausationID:   ne.CausationID,
			}
			if e.RecordedAt.IsZero() {
				e.RecordedAt = now
			}
			if !e.OccurredAt.IsZero() {
				e.OccurredAt = e.OccurredAt.UTC()
			}
			e.RecordedAt = e.RecordedAt.UTC()
			domain.Seal(t.lastHash, &e)
			w.meta = encodeMeta(w.meta[:0], &e)
			data := e.Data
			if data == nil {
				data = []byte{}
			}
			if _, err := insert.ExecContext(ctx, nextPos, t.id, int64(rev), w.meta, data); err != nil {
				return nil, nil, err
			}
			w.uncheckpointed += len(w.meta) + len(data)
			w.unrestarted += len(w.meta) + len(data)
			t.has, t.last, t.lastHash = true, rev, e.Hash
			p.rep.res = domain.AppendResult{Revision: rev, Position: domain.Seq(uint64(nextPos))}
			nextPos++
			rev++
		}
		changed[r.stream] = t
	}
	upsert := tx.StmtContext(ctx, w.upsertStream)
	for name, t := range changed {
		if _, err := upsert.ExecContext(ctx, t.id, name, int64(t.last), rawHash(t.lastHash)); err != nil {
			return nil, nil, err
		}
	}
	w.nextPos, w.nextStream = nextPos, nextStream
	return changed, newNames, nil
}

// retried reports whether r's events are already stored at the revisions r
// would have given them, and if so the original result. With Any, the
// events must be the stream's last ones.
func retried(ctx context.Context, selectIDs *sql.Stmt, t tip, r *appendReq) (domain.AppendResult, bool, error) {
	n := uint64(len(r.events))
	if !t.has {
		return domain.AppendResult{}, false, nil
	}
	var first uint64
	switch rev, exact := r.expected.Revision(); {
	case exact:
		if rev == t.last {
			return domain.AppendResult{}, false, nil // a plain append
		}
		first = rev + 1
	case r.expected.IsNoStream():
		first = 0
	default:
		if t.last+1 < n {
			return domain.AppendResult{}, false, nil
		}
		first = t.last + 1 - n
	}
	if first+n-1 > t.last || first+n-1 < first {
		return domain.AppendResult{}, false, nil
	}
	rows, err := selectIDs.QueryContext(ctx, t.id, int64(first), int64(first+n-1))
	if err != nil {
		return domain.AppendResult{}, false, err
	}
	defer rows.Close()
	var (
		i    int
		pos  int64
		meta sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &meta); err != nil {
			return domain.AppendResult{}, false, err
		}
		id, err := metaID(meta)
		if err != nil {
			return domain.AppendResult{}, false, err
		}
		if i >= len(r.events) || id != r.events[i].ID {
			return domain.AppendResult{}, false, nil
		}
		i++
	}
	if err := rows.Err(); err != nil || i != len(r.events) {
		return domain.AppendResult{}, false, err
	}
	return domain.AppendResult{Revision: first + n - 1, Position: domain.Seq(uint64(pos))}, true, nil
}

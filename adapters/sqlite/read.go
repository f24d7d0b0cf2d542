package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"perfledger/domain"
)

// pageSize is how many events one read query returns. Rows are read into
// memory a page at a time, so no read transaction stays open while the
// caller handles events.
const pageSize = 512

type readStmts struct {
	all, stream, times, positions *sql.Stmt
}

func (r *readStmts) close() {
	for _, st := range []*sql.Stmt{r.all, r.stream, r.times, r.positions} {
		if st != nil {
			st.Close()
		}
	}
}

func (s *Store) prepareReads(ctx context.Context) error {
	var err error
	s.rd.all, err = s.rdb.PrepareContext(ctx,
		"SELECT position, stream_id, revision, meta, data FROM events WHERE position > ? ORDER BY position LIMIT ?")
	if err != nil {
		return err
	}
	s.rd.stream, err = s.rdb.PrepareContext(ctx,
		"SELECT position, stream_id, revision, meta, data FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision LIMIT ?")
	if err != nil {
		return err
	}
	s.rd.times, err = s.rdb.PrepareContext(ctx,
		"SELECT position, meta FROM events WHERE position > ? ORDER BY position LIMIT ?")
	if err != nil {
		return err
	}
	s.rd.positions, err = s.rdb.PrepareContext(ctx,
		"SELECT position, stream_id, revision, meta, data FROM events WHERE position IN (?"+strings.Repeat(", ?", positionsPage-1)+
			") ORDER BY position")
	return err
}

func hexHash(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

func rawHash(h string) []byte {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic("sqlite: hash is not hex: " + h) // ChainHash always returns hex
	}
	return b
}

// pageReader decodes pages of events, reusing its buffers between pages.
type pageReader struct {
	s    *Store
	meta *metaReader
	page []domain.Event
	ids  []int64
	refs []textRefs
	text []byte // the page's strings, made into one string per page
	slab []byte // payloads are carved out of slabs to save allocations
}

func (s *Store) newPageReader() *pageReader {
	return &pageReader{s: s, meta: newMetaReader(), page: make([]domain.Event, 0, 64)}
}

// data returns a copy of b carved from the reader's slab.
func (r *pageReader) data(b []byte) []byte {
	if len(b) > 16<<10 {
		return append([]byte(nil), b...)
	}
	if cap(r.slab)-len(r.slab) < len(b) {
		r.slab = make([]byte, 0, 256<<10)
	}
	start := len(r.slab)
	r.slab = append(r.slab, b...)
	return r.slab[start:len(r.slab):len(r.slab)]
}

// read runs a page query and decodes its rows. The previous page's events
// are overwritten.
func (r *pageReader) read(ctx context.Context, st *sql.Stmt, args ...any) ([]domain.Event, error) {
	page, _, err := r.readWhere(ctx, st, nil, args...)
	return page, err
}

// readWhere is read keeping only the rows keep (when not nil) accepts; keep
// sees each row's position, type, times and data (see
// domain.FilteringReader), and only the rows kept are decoded further. It
// also returns how many rows the query gave and the position of the last.
func (r *pageReader) readWhere(ctx context.Context, st *sql.Stmt, keep func(domain.Event) bool, args ...any) ([]domain.Event, pageEnd, error) {
	var end pageEnd
	select {
	case <-r.s.done:
		return nil, end, domain.ErrStoreClosed
	default:
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, end, r.translate(ctx, err)
	}
	defer rows.Close()
	r.page, r.ids, r.refs, r.text = r.page[:0], r.ids[:0], r.refs[:0], r.text[:0]
	var (
		pos, sid, rev any
		meta, data    sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&pos, &sid, &rev, &meta, &data); err != nil {
			return nil, end, r.translate(ctx, err)
		}
		p, _ := pos.(int64)
		id, _ := sid.(int64)
		rv, _ := rev.(int64)
		end.rows, end.last = end.rows+1, p
		if keep != nil {
			head := domain.Event{Position: domain.Seq(uint64(p)), Data: data}
			if err := r.meta.decodeHead(meta, &head); err != nil {
				return nil, end, fmt.Errorf("sqlite: read position %d: %w", p, err)
			}
			if !keep(head) {
				continue
			}
		}
		r.page = append(r.page, domain.Event{Revision: uint64(rv), Position: domain.Seq(uint64(p))})
		e := &r.page[len(r.page)-1]
		r.refs = append(r.refs, textRefs{})
		if r.text, err = r.meta.decodeInto(meta, e, &r.refs[len(r.refs)-1], r.text); err != nil {
			return nil, end, fmt.Errorf("sqlite: read position %d: %w", p, err)
		}
		e.Data = r.data(data)
		r.ids = append(r.ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, end, r.translate(ctx, err)
	}
	rows.Close()
	text := string(r.text)
	for i := range r.page {
		r.refs[i].resolve(text, &r.page[i])
		name, err := r.s.names.name(ctx, r.ids[i])
		if err != nil {
			return nil, end, r.translate(ctx, err)
		}
		r.page[i].Stream = name
	}
	return r.page, end, nil
}

// yieldAll yields a page's events, and reports whether the consumer wants
// more.
func yieldAll(page []domain.Event, yield func(domain.Event, error) bool) bool {
	for i := range page {
		if !yield(page[i], nil) {
			return false
		}
	}
	return true
}

// pageEnd is how many rows a page query gave and the position of the last.
type pageEnd struct {
	rows int
	last int64
}

func (r *pageReader) translate(ctx context.Context, err error) error {
	return r.s.translateRead(ctx, err)
}

// translateRead turns a failed read into the error its caller reports: the
// context's, domain.ErrStoreClosed once the store is closed, or err.
func (s *Store) translateRead(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	select {
	case <-s.done:
		return domain.ErrStoreClosed
	default:
	}
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("sqlite: read: %w", errors.Join(err, domain.ErrStoreClosed))
	}
	return fmt.Errorf("sqlite: read: %w", err)
}

func clampPos(p uint64) int64 {
	if p > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(p)
}

// ReadStream implements domain.EventStore.
//
// Events read together share memory: small payloads are carved from common
// 256 KiB blocks and the string fields of a page of up to 512 events from
// one string, so a caller that keeps one event keeps those alive. Callers
// that retain a few events out of many should copy them.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		r := s.newPageReader()
		id, ok, err := s.names.id(ctx, stream)
		if err != nil {
			yield(domain.Event{}, r.translate(ctx, err))
			return
		}
		if !ok {
			return
		}
		next := clampPos(from)
		for {
			page, err := r.read(ctx, s.rd.stream, id, next, pageSize)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if !yieldAll(page, yield) {
				return
			}
			if len(page) < pageSize {
				return
			}
			next = int64(page[len(page)-1].Revision) + 1
		}
	}
}

// ReadAll implements domain.EventStore; its events share memory as
// ReadStream's do. It reads up to the events committed
// when it reaches the end of the log.
func (s *Store) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return s.ReadAllWhere(ctx, after, domain.Position{}, nil)
}

// ReadAllWhere implements domain.FilteringReader: ReadAll that decodes only
// the meta head (type and times) of the events keep refuses (nil keep:
// every event).
func (s *Store) ReadAllWhere(ctx context.Context, after, upTo domain.Position, keep func(domain.Event) bool) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		r := s.newPageReader()
		next := clampPos(after.Commit)
		for {
			if !upTo.IsZero() && next >= clampPos(upTo.Commit) {
				return
			}
			page, end, err := r.readWhere(ctx, s.rd.all, keep, next, pageSize)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			for i := range page {
				if !upTo.IsZero() && upTo.Less(page[i].Position) {
					return
				}
				if !yield(page[i], nil) {
					return
				}
			}
			if end.rows < pageSize {
				return
			}
			next = end.last
		}
	}
}

// positionsPage is how many positions one query of ReadPositions reads.
const positionsPage = 256

// ReadPositions implements domain.PositionReader: it reads the events at
// positions, positionsPage at a time, each by its key.
func (s *Store) ReadPositions(ctx context.Context, positions []domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		r := s.newPageReader()
		args := make([]any, positionsPage)
		for len(positions) > 0 {
			n := min(len(positions), positionsPage)
			for i := range args {
				// A short last page repeats its last position.
				args[i] = clampPos(positions[min(i, n-1)].Commit)
			}
			positions = positions[n:]
			page, _, err := r.readWhere(ctx, s.rd.positions, nil, args...)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if !yieldAll(page, yield) {
				return
			}
		}
	}
}

// timesPage is how many events one query of RecordedTimes lists.
const timesPage = 4096

// RecordedTimes implements domain.TimeLister: it reads each event's position
// and meta only (not its data), and decodes only the recorded time. It reads
// up to the events committed when it reaches the end of the log.
func (s *Store) RecordedTimes(ctx context.Context, after domain.Position) iter.Seq2[domain.EventTime, error] {
	return func(yield func(domain.EventTime, error) bool) {
		next := clampPos(after.Commit)
		page := make([]domain.EventTime, 0, timesPage)
		types := map[string]string{} // one string per type
		for {
			page = page[:0]
			err := func() error {
				select {
				case <-s.done:
					return domain.ErrStoreClosed
				default:
				}
				rows, err := s.rd.times.QueryContext(ctx, next, timesPage)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var pos int64
					var meta sql.RawBytes
					if err := rows.Scan(&pos, &meta); err != nil {
						return err
					}
					t, occurred, typ, err := metaTimes(meta)
					if err != nil {
						return fmt.Errorf("sqlite: read position %d: %w", pos, err)
					}
					name, ok := types[string(typ)]
					if !ok {
						name = string(typ)
						types[name] = name
					}
					page = append(page, domain.EventTime{Position: domain.Seq(uint64(pos)), RecordedAt: t, Type: name, OccurredAt: occurred})
				}
				return rows.Err()
			}()
			if err != nil {
				yield(domain.EventTime{}, s.translateRead(ctx, err))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < timesPage {
				return
			}
			next = int64(page[len(page)-1].Position.Commit)
		}
	}
}

// Subscribe implements domain.EventStore. Appends through this Store wake it
// at once; appends by other processes are seen within Config.PollInterval.
// It ends with domain.ErrStoreClosed when the store is closed.
func (s *Store) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		r := s.newPageReader()
		next := clampPos(after.Commit)
		var poll *time.Timer
		for {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			// Taken before the query: a commit after the query closes it.
			wake := s.wake()
			page, err := r.read(ctx, s.rd.all, next, pageSize)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if !yieldAll(page, yield) {
				return
			}
			if len(page) > 0 {
				next = int64(page[len(page)-1].Position.Commit)
				continue
			}
			var tick <-chan time.Time
			if s.cfg.PollInterval > 0 {
				if poll == nil {
					poll = time.NewTimer(s.cfg.PollInterval)
					defer poll.Stop()
				} else {
					poll.Reset(s.cfg.PollInterval)
				}
				tick = poll.C
			}
			select {
			case <-ctx.Done():
				yield(domain.Event{}, ctx.Err())
				return
			case <-s.done:
				yield(domain.Event{}, domain.ErrStoreClosed)
				return
			case <-wake:
			case <-tick:
			}
		}
	}
}

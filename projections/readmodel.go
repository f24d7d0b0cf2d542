package projections

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"perfledger/domain"
)

// Queryer is what the read-model queries need from the database: *sql.DB,
// *sql.Conn and *sql.Tx all satisfy it.
type Queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Queryer = (*sql.DB)(nil)
	_ Queryer = (*sql.Conn)(nil)
	_ Queryer = (*sql.Tx)(nil)
)

// ErrInvalidQuery is wrapped by every query error caused by the query itself
// (unknown metric, malformed period or cursor …); the HTTP layer answers 400.
var ErrInvalidQuery = errors.New("invalid query")

// Page limits shared by every list query: a Limit of 0 means DefaultLimit,
// and no page holds more than MaxLimit rows.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func pageLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: limit %d is negative", ErrInvalidQuery, n)
	case n == 0:
		return DefaultLimit, nil
	case n > MaxLimit:
		return MaxLimit, nil
	}
	return n, nil
}

// encodeCursor and decodeCursor turn a keyset position into the opaque
// Cursor/Next strings of the list queries.
func encodeCursor(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("projections: cursor: %v", err)) // only plain structs are encoded
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("%w: malformed cursor", ErrInvalidQuery)
	}
	return nil
}

// table names: "{p}" in a statement stands for the instance prefix.
func withPrefix(prefix, q string) string { return strings.ReplaceAll(q, "{p}", prefix) }

// execAll runs a ;-separated schema script statement by statement.
func execAll(ctx context.Context, tx *sql.Tx, prefix, script string) error {
	for _, s := range strings.Split(withPrefix(prefix, script), ";") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("setup %s: %w", firstLine(s), err)
		}
	}
	return nil
}

// joinCreates joins the Create statements of indexes into a script for
// execAll.
func joinCreates(indexes []QueryIndex) string {
	parts := make([]string, len(indexes))
	for i, ix := range indexes {
		parts[i] = ix.Create
	}
	return strings.Join(parts, ";")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// stmts prepares each statement once per Apply and reuses it for every event
// of the batch. Close releases them; the transaction must still be open.
type stmts struct {
	tx     *sql.Tx
	prefix string
	m      map[string]*sql.Stmt
	// watch: each statement stops when its ctx ends (a query's statements).
	watch bool
}

// newStmts returns the statements of a transaction that writes a read
// model. They are prepared and run without watching their ctx: the SQLite
// driver would start and stop a goroutine per statement to do so, 7 % of
// the CPU of a rebuild of short statements. The transaction watches it
// instead: database/sql rolls it back when the ctx it began with ends, and
// the next statement fails (TestCancelledApplyCommitsNoPartOfItsBatch).
func newStmts(tx *sql.Tx, prefix string) *stmts {
	return &stmts{tx: tx, prefix: prefix, m: make(map[string]*sql.Stmt)}
}

// newQueryStmts returns statements that each stop when their ctx ends, for
// the queries of a request.
func newQueryStmts(tx *sql.Tx, prefix string) *stmts {
	s := newStmts(tx, prefix)
	s.watch = true
	return s
}

// ctx is the context a statement runs with (see newStmts).
func (s *stmts) ctx(ctx context.Context) context.Context {
	if s.watch {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

func (s *stmts) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.m[q]; ok {
		return st, nil
	}
	st, err := s.tx.PrepareContext(s.ctx(ctx), withPrefix(s.prefix, q))
	if err != nil {
		return nil, fmt.Errorf("prepare %s: %w", firstLine(q), err)
	}
	s.m[q] = st
	return st, nil
}

func (s *stmts) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.execN(ctx, q, args...)
	return err
}

// execN runs a statement and returns how many rows it changed.
func (s *stmts) execN(ctx context.Context, q string, args ...any) (int64, error) {
	st, err := s.get(ctx, q)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(s.ctx(ctx), args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", firstLine(q), err)
	}
	return res.RowsAffected()
}

func (s *stmts) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(s.ctx(ctx), args...)
}

// row scans one row; found is false when there is none.
func (s *stmts) row(ctx context.Context, q string, args []any, dest ...any) (found bool, err error) {
	st, err := s.get(ctx, q)
	if err != nil {
		return false, err
	}
	err = st.QueryRowContext(s.ctx(ctx), args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", firstLine(q), err)
	}
	return true, nil
}

func (s *stmts) close() {
	for _, st := range s.m {
		_ = st.Close()
	}
}

// The position an instance reflects is kept in its own meta table, written
// in the same transaction as its rows: it always equals the runner's
// checkpoint for that instance.
const metaSchema = `CREATE TABLE IF NOT EXISTS {p}meta (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	position_commit INTEGER NOT NULL,
	position_prepare INTEGER NOT NULL
)`

// savePosition records the position of batch's last event (if any) as the
// position the read model reflects.
func savePosition(ctx context.Context, s *stmts, batch []Envelope) error {
	if len(batch) == 0 {
		return nil
	}
	return saveAt(ctx, s, batch[len(batch)-1].Position)
}

// saveAt records p as the position the read model reflects.
func saveAt(ctx context.Context, s *stmts, p domain.Position) error {
	return s.exec(ctx, `INSERT INTO {p}meta (id, position_commit, position_prepare) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET position_commit = excluded.position_commit, position_prepare = excluded.position_prepare`,
		int64(p.Commit), int64(p.Prepare))
}

func loadPosition(ctx context.Context, db Queryer, prefix string) (domain.Position, error) {
	var c, p int64
	err := db.QueryRowContext(ctx, withPrefix(prefix, `SELECT position_commit, position_prepare FROM {p}meta WHERE id = 1`)).Scan(&c, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Position{}, nil
	}
	if err != nil {
		return domain.Position{}, fmt.Errorf("read position: %w", err)
	}
	return domain.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// Times are stored as RFC 3339 strings with nanoseconds in UTC, which sort
// chronologically as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func fmtDay(t time.Time) string { return t.UTC().Format(domain.DateLayout) }

// unixDay is the number of t's day (UTC) since 1970-01-01.
func unixDay(t time.Time) int64 {
	s := t.Unix()
	if s < 0 && s%86400 != 0 {
		return s/86400 - 1
	}
	return s / 86400
}

// jsonText encodes v as JSON text for a TEXT column ("null" if it cannot).
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// rowBuffer collects the rows of one INSERT and writes them in multi-row
// statements of up to rowChunk rows: one statement per chunk instead of one
// per row. Whoever reads the table must flush it first.
//
// A flush of fewer rows writes them in statements of powers of two rows
// (45 rows: 32, 8, 4 and 1), so that a buffer flushed at every void or
// batch end prepares at most 7 statements per transaction instead of one
// per row count (each of up to rowChunk × cols parameters).
type rowBuffer struct {
	head string // "INSERT … INTO {p}t (a, b) VALUES "
	tail string // e.g. an ON CONFLICT clause; may be empty
	cols int
	args []any
	n    int
	sql  [rowChunkLog + 1]string // sql[i]: the statement of 1<<i rows
}

// rowChunk is a power of two: 1 << rowChunkLog.
const (
	rowChunkLog = 6
	rowChunk    = 1 << rowChunkLog
)

func (r *rowBuffer) add(ctx context.Context, s *stmts, vals ...any) error {
	r.args = append(r.args, vals...)
	if r.n++; r.n == rowChunk {
		return r.flush(ctx, s)
	}
	return nil
}

func (r *rowBuffer) flush(ctx context.Context, s *stmts) error {
	var err error
	args := r.args
	for n := r.n; n > 0 && err == nil; {
		i := bits.Len(uint(n)) - 1 // the largest power of two ≤ n
		if r.sql[i] == "" {
			r.sql[i] = valuesSQL(r.head, r.cols, 1<<i, r.tail)
		}
		k := (1 << i) * r.cols
		err = s.exec(ctx, r.sql[i], args[:k]...)
		args, n = args[k:], n-1<<i
	}
	clear(r.args)
	r.args, r.n = r.args[:0], 0
	return err
}

// valuesSQL is a multi-row statement: head ("INSERT … VALUES "), n rows of
// cols placeholders, then tail (an ON CONFLICT clause, or "").
func valuesSQL(head string, cols, n int, tail string) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	var sb strings.Builder
	sb.Grow(len(head) + n*(len(row)+2) + len(tail))
	sb.WriteString(head)
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	sb.WriteString(tail)
	return sb.String()
}

// applyEach is the Apply of a read model that folds events one at a time:
// apply runs for every event in order with the batch's statements, then the
// position the model reflects is saved in the same transaction.
func applyEach(ctx context.Context, tx *sql.Tx, prefix, name string, batch []Envelope,
	apply func(context.Context, *stmts, Envelope) error) error {
	s := newStmts(tx, prefix)
	defer s.close()
	for _, e := range batch {
		if err := apply(ctx, s, e); err != nil {
			return fmt.Errorf("%s: event %s (%s): %w", name, e.ID, e.Type, err)
		}
	}
	return savePosition(ctx, s, batch)
}

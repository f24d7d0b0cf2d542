package projections

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"time"

	"perfledger/domain"
)

// A board leaderboard (Leaderboard.board: one metric's boards of one
// period, in an as-of view) keeps its contributions in memory instead of in
// sc_contrib: its queries never read them, and it only looks one up to void
// it, re-credit it after a late transfer or list a member's revenue days.
// Writing a row per contribution was most of the cost of an as-of board of
// a quarter or a year: a year's revenue board as of 2026-09-01 on the
// benchmark ledger took 3.0 – 3.2 s and takes 1.4 – 1.6 s, the activity
// points of the year over its whole 1.70M-event log 20 – 26 s and 6.6 – 7.3 s.
//
// What it holds is still written in the transaction of each batch, as a
// journal: one chunk per batch of the rows added or changed in it, in
// board_contribs. A build that starts from a copy of the database (an
// as-of snapshot, or a cached view it continues) reads the journal back
// into memory, and so does an instance whose last batch failed. The
// journal holds each row once per batch that changed it, a few bytes each.
//
// Memory is bounded: past maxBoardContribs rows, or at a contribution it
// cannot hold (a time past 2262), the board spills them into sc_contrib and
// goes on as the full leaderboard does (the journal then ends with an empty
// chunk). A spilled row holds what the board reads of
// it (the source id, member, week, month, metric, team, time, day, points
// and whether it was voided): its source kind, currency, amount and event
// id are left empty, and a voided row's voided_by is voidedBySpilled.
const boardContribsSchema = `CREATE TABLE IF NOT EXISTS {p}board_contribs (
	seq INTEGER PRIMARY KEY,
	chunk BLOB NOT NULL
)`

// boardContribs are a board leaderboard's contributions. A year's board
// of activity points over a whole log holds over a million, so they hold
// no pointers for the collector to trace and about 60 bytes each: 40-byte
// rows in chunks, their source ids in chunks of bytes (without the
// "activity:" or "sale:" in front), an open-addressing index of row
// numbers by member and source id, and strings by number.
type boardContribs struct {
	// seq is the last chunk of the journal the memory reflects; -1 while a
	// batch changes it (so that a batch that does not commit makes the next
	// one read the journal again), 0 for an empty journal.
	seq   int64
	rows  [][]boardContrib // chunks of rowChunkLen rows; row i is rows[i>>rowChunkBits][i&rowChunkMask]
	n     int32            // rows held
	arena [][]byte         // the source ids of the rows, in chunks of up to arenaChunkLen bytes
	// slots index the rows by hash of member and source id (not week):
	// row number + 1, 0 for a free slot; linear probing; a power of two
	// long, at most three quarters full.
	slots []int32
	seed  maphash.Seed
	// lastOf is each member's (by string number) latest row, or -1; a
	// member's rows chain through prevOfMember.
	lastOf []int32
	strs   []string // members and teams, by number
	strNo  map[string]int32
	weeks  []string // by number
	weekNo map[string]uint16
	// dayWeek caches the week of each day (Unix days) contributions fell on.
	dayWeek map[int64]string
	dirty   []int32 // rows added or changed by the current batch
	// spilled: the contributions are in sc_contrib (maxBoardContribs);
	// spillNow: by the current batch.
	spilled, spillNow bool
}

// boardContrib is what sc_contrib keeps of a contribution that a board
// reads: the member and week (with the source id, its key), the metric it
// counts on ("" for none), the team credited, when it occurred and its
// points on the board. Members and teams are string numbers, weeks week
// numbers and metrics indexes of boardMetricNames.
type boardContrib struct {
	at, points    int64 // at: Unix nanoseconds
	src, srcLen   uint32
	member, team  int32
	prevOfMember  int32 // the member's previous row, or -1
	week          uint16
	metric, flags uint8
}

// Flags of a boardContrib.
const (
	contribVoided = 1 << iota
	contribDirty
	contribActivity // the source id is "activity:" + what the arena holds
	contribSale     // "sale:" + it
)

// boardMetricNames are the metrics a contribution can count on.
var boardMetricNames = []string{"", MetricRevenue, MetricActivityPoints}

// maxBoardContribs bounds the rows held in memory: about 120 MB. The
// activity points of a year over the 1.70M-event benchmark ledger are 1.3M.
var maxBoardContribs int32 = 1 << 21

// voidedBySpilled is voided_by of a voided row that a board spilled.
const voidedBySpilled = "(voided)"

const (
	rowChunkBits   = 16
	rowChunkMask   = 1<<rowChunkBits - 1
	arenaChunkBits = 20 // a row's src: arena chunk << arenaChunkBits | offset
	arenaChunkLen  = 1 << arenaChunkBits
)

func newBoardContribs() *boardContribs {
	return &boardContribs{seq: -1, seed: maphash.MakeSeed()}
}

// dropMemory implements memoryHolder: a board leaderboard's contributions
// are read back from their journal by its next batch, and the organisation
// from its tables.
func (l *Leaderboard) dropMemory() { l.contribs, l.org = nil, nil }

func (c *boardContrib) voided() bool { return c.flags&contribVoided != 0 }

func (c *boardContrib) time() time.Time { return time.Unix(0, c.at).UTC() }

// fitsContrib reports whether a contribution at t can be held (its time in
// Unix nanoseconds).
func fitsContrib(t time.Time) bool {
	return t.Year() > 1678 && t.Year() < 2262
}

// num returns the number of a member's or team's id, adding it if new.
func (bc *boardContribs) num(s string) int32 {
	if n, ok := bc.strNo[s]; ok {
		return n
	}
	n := int32(len(bc.strs))
	bc.strs = append(bc.strs, s)
	bc.strNo[s] = n
	bc.lastOf = append(bc.lastOf, -1)
	return n
}

// str returns the string of a number.
func (bc *boardContribs) str(n int32) string { return bc.strs[n] }

// weekOf returns the ISO week t falls in (its name), one computation a day.
func (bc *boardContribs) weekOf(t time.Time) string {
	t = t.UTC()
	day := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		day--
	}
	if w, ok := bc.dayWeek[day]; ok {
		return w
	}
	w := domain.PeriodOf(domain.PeriodWeek, t).String()
	bc.dayWeek[day] = w
	return w
}

// weekNum returns the number of a week, adding it if new; false past 65,535
// weeks.
func (bc *boardContribs) weekNum(w string) (uint16, bool) {
	if n, ok := bc.weekNo[w]; ok {
		return n, true
	}
	if len(bc.weeks) > 0xffff {
		return 0, false
	}
	n := uint16(len(bc.weeks))
	bc.weeks = append(bc.weeks, w)
	bc.weekNo[w] = n
	return n, true
}

func metricNum(m string) (uint8, bool) {
	i := slices.Index(boardMetricNames, m)
	return uint8(max(i, 0)), i >= 0
}

// splitSource returns a source id's flag and what the arena holds of it.
func splitSource[T ~string | ~[]byte](source T) (uint8, T) {
	switch {
	case len(source) >= len(activityPrefix) && string(source[:len(activityPrefix)]) == activityPrefix:
		return contribActivity, source[len(activityPrefix):]
	case len(source) >= len(salePrefix) && string(source[:len(salePrefix)]) == salePrefix:
		return contribSale, source[len(salePrefix):]
	}
	return 0, source
}

// The prefixes of the source ids a boardContrib holds without them.
const (
	activityPrefix = "activity:"
	salePrefix     = "sale:"
)

func (bc *boardContribs) rawSource(c *boardContrib) []byte {
	off := c.src & (arenaChunkLen - 1)
	return bc.arena[c.src>>arenaChunkBits][off : off+c.srcLen]
}

// source returns a row's source id.
func (bc *boardContribs) source(c *boardContrib) string {
	switch c.flags & (contribActivity | contribSale) {
	case contribActivity:
		return "activity:" + string(bc.rawSource(c))
	case contribSale:
		return "sale:" + string(bc.rawSource(c))
	}
	return string(bc.rawSource(c))
}

// appendSource is appendString(b, bc.source(c)), without making the string.
func (bc *boardContribs) appendSource(b []byte, c *boardContrib) []byte {
	var prefix string
	switch c.flags & (contribActivity | contribSale) {
	case contribActivity:
		prefix = "activity:"
	case contribSale:
		prefix = "sale:"
	}
	raw := bc.rawSource(c)
	b = binary.AppendUvarint(b, uint64(len(prefix)+len(raw)))
	return append(append(b, prefix...), raw...)
}

// is reports whether row c is of a member's source id (kind and raw id as
// splitSource returns them).
func (bc *boardContribs) is(c *boardContrib, member int32, kind uint8, raw string) bool {
	return c.member == member && c.flags&(contribActivity|contribSale) == kind && string(bc.rawSource(c)) == raw
}

// keep stores a source id in the arena and returns its src.
func keep[T ~string | ~[]byte](bc *boardContribs, raw T) uint32 {
	last := len(bc.arena) - 1
	if last < 0 || len(bc.arena[last])+len(raw) > cap(bc.arena[last]) {
		bc.arena = append(bc.arena, make([]byte, 0, max(arenaChunkLen, len(raw))))
		last++
	}
	off := len(bc.arena[last])
	bc.arena[last] = append(bc.arena[last], raw...)
	return uint32(last)<<arenaChunkBits | uint32(off)
}

// hash is the hash of a member's source id (kind and raw id as splitSource
// returns them); hashRow the same of a row's.
func (bc *boardContribs) hash(member int32, kind uint8, raw string) uint64 {
	return mixSource(maphash.String(bc.seed, raw), member, kind)
}

func (bc *boardContribs) hashRow(c *boardContrib) uint64 {
	// maphash.Bytes and maphash.String agree on equal contents.
	return mixSource(maphash.Bytes(bc.seed, bc.rawSource(c)), c.member, c.flags&(contribActivity|contribSale))
}

// mixSource mixes the member and kind of a source id into its raw id's hash.
func mixSource(h uint64, member int32, kind uint8) uint64 {
	return h ^ (uint64(member)<<8|uint64(kind))*0x9e3779b97f4a7c15
}

// find calls f with each row of a member's source id (any week) until f
// returns false.
func (bc *boardContribs) find(member int32, source string, f func(i int32) bool) {
	if len(bc.slots) == 0 {
		return
	}
	kind, raw := splitSource(source)
	mask := uint64(len(bc.slots) - 1)
	for j := bc.hash(member, kind, raw) & mask; bc.slots[j] != 0; j = (j + 1) & mask {
		if i := bc.slots[j] - 1; bc.is(bc.row(i), member, kind, raw) && !f(i) {
			return
		}
	}
}

// index adds row i to the slots, growing them first when needed.
func (bc *boardContribs) index(i int32) {
	if int(bc.n)*4 >= len(bc.slots)*3 {
		bc.slots = make([]int32, max(1024, 2*len(bc.slots)))
		for k := range bc.n {
			if k != i {
				bc.slot(k)
			}
		}
	}
	bc.slot(i)
}

func (bc *boardContribs) slot(i int32) {
	c := bc.row(i)
	mask := uint64(len(bc.slots) - 1)
	j := bc.hashRow(c) & mask
	for bc.slots[j] != 0 {
		j = (j + 1) & mask
	}
	bc.slots[j] = i + 1
}

// begin makes the memory reflect the journal of the transaction's
// database, reading it back unless it already does, and marks it as being
// changed. It returns the chunk the memory reflects.
func (bc *boardContribs) begin(ctx context.Context, s *stmts) (int64, error) {
	var last int64
	if _, err := s.row(ctx, `SELECT coalesce(max(seq), 0) FROM {p}board_contribs`, nil, &last); err != nil {
		return 0, err
	}
	if bc.seq != last {
		if err := bc.load(ctx, s); err != nil {
			return 0, fmt.Errorf("read the board's contributions: %w", err)
		}
		bc.seq = last
	}
	at := bc.seq
	bc.seq = -1
	return at, nil
}

// finish writes the rows the batch added or changed as the journal's next
// chunk (after chunk at, which begin returned).
func (bc *boardContribs) finish(ctx context.Context, s *stmts, at int64) error {
	var chunk []byte
	switch {
	case bc.spillNow: // spilled by this batch: the empty chunk, its rows are in sc_contrib
		chunk, bc.spillNow = []byte{}, false
	case len(bc.dirty) == 0:
		bc.seq = at
		return nil
	default:
		chunk = bc.chunk()
	}
	if err := s.exec(ctx, `INSERT INTO {p}board_contribs (seq, chunk) VALUES (?, ?)`, at+1, chunk); err != nil {
		return err
	}
	bc.seq = at + 1
	return nil
}

// chunk encodes the rows added or changed by the current batch, and marks
// them unchanged.
func (bc *boardContribs) chunk() []byte {
	buf := make([]byte, 0, 128*len(bc.dirty)) // a row takes about 100 bytes
	for _, i := range bc.dirty {
		c := bc.row(i)
		c.flags &^= contribDirty
		buf = appendString(buf, bc.str(c.member))
		buf = bc.appendSource(buf, c)
		buf = appendString(buf, bc.weeks[c.week])
		buf = appendString(buf, boardMetricNames[c.metric])
		buf = appendString(buf, bc.str(c.team))
		buf = binary.AppendVarint(buf, c.at)
		buf = binary.AppendVarint(buf, c.points)
		buf = append(buf, c.flags&contribVoided)
	}
	bc.dirty = bc.dirty[:0]
	return buf
}

// clear empties the memory.
func (bc *boardContribs) clear() {
	*bc = boardContribs{seq: bc.seq, seed: bc.seed, strNo: map[string]int32{}, weekNo: map[string]uint16{}, dayWeek: map[int64]string{}}
}

// load replaces the memory with the journal's rows.
func (bc *boardContribs) load(ctx context.Context, s *stmts) error {
	bc.clear()
	var size int64
	if _, err := s.row(ctx, `SELECT coalesce(sum(length(chunk)), 0) FROM {p}board_contribs`, nil, &size); err != nil {
		return err
	}
	// Index slots for the rows the journal holds (about 100 bytes a row), so
	// that loading it does not index every row again at each doubling.
	if rows := size / 100; rows > 0 && rows < int64(maxBoardContribs) {
		bc.slots = make([]int32, 1<<bits.Len64(uint64(rows*4/3)))
	}
	rows, err := s.query(ctx, `SELECT chunk FROM {p}board_contribs ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var chunk sql.RawBytes // replay keeps nothing of it
		if err := rows.Scan(&chunk); err != nil {
			return err
		}
		if err := bc.replay(chunk); err != nil {
			return err
		}
	}
	return rows.Err()
}

var errBadChunk = errors.New("a chunk of the journal is cut short or holds what no batch wrote")

// replay applies one chunk of the journal: each row replaces the one of the
// same member, week and source id, or is added.
func (bc *boardContribs) replay(chunk []byte) error {
	if len(chunk) == 0 { // the rows were spilled into sc_contrib
		bc.clear()
		bc.spilled = true
		return nil
	}
	d := decoder{b: chunk}
	for len(d.b) > 0 {
		member, source, week, metric, team := d.bytes(), d.bytes(), d.bytes(), d.bytes(), d.bytes()
		at, points := d.varint(), d.varint()
		voided := d.byte() == contribVoided
		m, okMetric := metricNum(string(metric))
		if d.bad || !okMetric {
			return errBadChunk
		}
		w, okWeek := bc.weekNumOf(week)
		if !okWeek {
			return errBadChunk
		}
		kind, raw := splitSource(source)
		c := boardContrib{at: at, points: points, member: bc.numOf(member), team: bc.numOf(team), metric: m,
			week: w, flags: kind}
		if voided {
			c.flags |= contribVoided
		}
		if i := bc.lookupRaw(c.member, kind, raw, w); i >= 0 {
			r := bc.row(i)
			r.at, r.points, r.team, r.metric = c.at, c.points, c.team, c.metric
			r.flags = r.flags&^contribVoided | c.flags&contribVoided
			continue
		}
		c.src, c.srcLen = keep(bc, raw), uint32(len(raw))
		bc.push(c)
	}
	return nil
}

// numOf is num of an id read from a chunk, made a string only when new.
func (bc *boardContribs) numOf(b []byte) int32 {
	if n, ok := bc.strNo[string(b)]; ok {
		return n
	}
	return bc.num(string(b))
}

// weekNumOf is weekNum of a week read from a chunk, made a string only when
// new.
func (bc *boardContribs) weekNumOf(b []byte) (uint16, bool) {
	if n, ok := bc.weekNo[string(b)]; ok {
		return n, true
	}
	return bc.weekNum(string(b))
}

// lookupRaw is lookup of a source id read from a chunk (kind and raw id as
// splitSource returns them) in a week by number.
func (bc *boardContribs) lookupRaw(member int32, kind uint8, raw []byte, week uint16) int32 {
	if len(bc.slots) == 0 {
		return -1
	}
	mask := uint64(len(bc.slots) - 1)
	// maphash.Bytes and maphash.String agree on equal contents: this is hash.
	for j := mixSource(maphash.Bytes(bc.seed, raw), member, kind) & mask; bc.slots[j] != 0; j = (j + 1) & mask {
		i := bc.slots[j] - 1
		if c := bc.row(i); c.week == week && c.member == member && c.flags&(contribActivity|contribSale) == kind &&
			bytes.Equal(bc.rawSource(c), raw) {
			return i
		}
	}
	return -1
}

// lookup returns the row of a member's source id in one week, or -1.
func (bc *boardContribs) lookup(member int32, source, week string) int32 {
	found := int32(-1)
	bc.find(member, source, func(i int32) bool {
		if bc.weeks[bc.row(i).week] == week {
			found = i
			return false
		}
		return true
	})
	return found
}

// insert adds row c (its times, points, member, team and metric set) of a
// source id in a week; false if it cannot be held.
func (bc *boardContribs) insert(source, week string, c boardContrib) (int32, bool) {
	w, ok := bc.weekNum(week)
	if !ok {
		return 0, false
	}
	kind, raw := splitSource(source)
	c.week, c.flags = w, c.flags|kind
	c.src, c.srcLen = keep(bc, raw), uint32(len(raw))
	return bc.push(c), true
}

// push appends row c (all set but its chaining) and indexes it.
func (bc *boardContribs) push(c boardContrib) int32 {
	c.prevOfMember = bc.lastOf[c.member]
	i := bc.n
	if i&rowChunkMask == 0 {
		bc.rows = append(bc.rows, make([]boardContrib, 0, rowChunkMask+1))
	}
	bc.rows[len(bc.rows)-1] = append(bc.rows[len(bc.rows)-1], c)
	bc.n++
	bc.lastOf[c.member] = i
	bc.index(i)
	return i
}

// add records a new contribution, unless the member's source id is already
// counted in that week (as INSERT OR IGNORE into sc_contrib): added is
// false then. held is false when it cannot be held in memory (its time, or
// too many weeks): nothing is recorded, and the board must spill.
func (bc *boardContribs) add(c pendingContrib) (added, held bool) {
	m, ok := metricNum(c.metric)
	if !ok || !fitsContrib(c.at) {
		return false, false
	}
	member, week := bc.num(c.member), bc.weekOf(c.at)
	if bc.lookup(member, c.source, week) >= 0 {
		return false, true
	}
	i, ok := bc.insert(c.source, week, boardContrib{at: c.at.UnixNano(), points: c.amount, member: member,
		team: bc.num(c.ti.ID), metric: m})
	if !ok {
		return false, false
	}
	bc.touch(i)
	return true, true
}

// touch marks a row as changed by the current batch.
func (bc *boardContribs) touch(i int32) {
	if c := bc.row(i); c.flags&contribDirty == 0 {
		c.flags |= contribDirty
		bc.dirty = append(bc.dirty, i)
	}
}

// latest returns a member's contribution by source id in its latest week
// (as findContrib), or -1.
func (bc *boardContribs) latest(member, source string) int32 {
	m, ok := bc.strNo[member]
	if !ok {
		return -1
	}
	best := int32(-1)
	bc.find(m, source, func(i int32) bool {
		if best < 0 || bc.weeks[bc.row(i).week] > bc.weeks[bc.row(best).week] {
			best = i
		}
		return true
	})
	return best
}

// row returns row i.
func (bc *boardContribs) row(i int32) *boardContrib { return &bc.rows[i>>rowChunkBits][i&rowChunkMask] }

// rowsOf returns the indexes of a member's rows that f accepts.
func (bc *boardContribs) rowsOf(member string, f func(*boardContrib) bool) []int32 {
	m, ok := bc.strNo[member]
	if !ok {
		return nil
	}
	var out []int32
	for i := bc.lastOf[m]; i >= 0; i = bc.row(i).prevOfMember {
		if f(bc.row(i)) {
			out = append(out, i)
		}
	}
	return out
}

// full reports whether the memory holds more rows than it should.
func (bc *boardContribs) full() bool { return bc.n > maxBoardContribs }

// spill writes every row into sc_contrib, in the order of its key, and
// marks the contributions as spilled (finish then ends the journal).
func (bc *boardContribs) spill(ctx context.Context, s *stmts) error {
	order := make([]int32, bc.n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int {
		a, b := bc.row(x), bc.row(y)
		return cmp.Or(strings.Compare(bc.str(a.member), bc.str(b.member)), strings.Compare(bc.weeks[a.week], bc.weeks[b.week]),
			strings.Compare(bc.source(a), bc.source(b)))
	})
	rb := rowBuffer{head: `INSERT INTO {p}sc_contrib (source_id, member_id, week, month, source, currency, amount, event_id,
		voided_by, metric, team_id, occurred_at, day, points) VALUES `, cols: 14}
	for _, i := range order {
		c := bc.row(i)
		at := c.time()
		voidedBy := ""
		if c.voided() {
			voidedBy = voidedBySpilled
		}
		if err := rb.add(ctx, s, bc.source(c), bc.str(c.member), bc.weeks[c.week], domain.PeriodOf(domain.PeriodMonth, at).String(),
			"", "", int64(0), "", voidedBy, boardMetricNames[c.metric], bc.str(c.team), fmtTime(at), fmtDay(at), c.points); err != nil {
			return fmt.Errorf("spill the board's contributions: %w", err)
		}
	}
	if err := rb.flush(ctx, s); err != nil {
		return fmt.Errorf("spill the board's contributions: %w", err)
	}
	bc.clear()
	bc.spilled, bc.spillNow = true, true
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a journal chunk; bad is set once it runs short.
type decoder struct {
	b   []byte
	bad bool
}

// skip moves past n bytes just read, if n > 0 (binary.Uvarint's and
// Varint's count); else the chunk is cut short.
func (d *decoder) skip(n int) bool {
	if n <= 0 || n > len(d.b) {
		d.bad, d.b = true, nil
		return false
	}
	d.b = d.b[n:]
	return true
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if !d.skip(n) {
		return 0
	}
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if !d.skip(n) {
		return 0
	}
	return v
}

// bytes reads a string without copying it: valid as long as the chunk is.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

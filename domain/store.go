package domain

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
)

// Errors returned by every EventStore implementation. Adapters translate
// driver errors into these at their boundary; callers test with errors.Is.
var (
	// ErrConflict: the stream is not at the expected revision. The error is a
	// *ConflictError carrying the actual revision.
	ErrConflict = errors.New("wrong expected revision")
	// ErrInvalidAppend: the append request itself is malformed (empty stream
	// name, no events, an event without id or type, an oversized event).
	// Nothing is stored.
	ErrInvalidAppend = errors.New("invalid append")
	// ErrStoreClosed: the store was closed.
	ErrStoreClosed = errors.New("event store closed")
)

// MaxEventSize is the largest payload (Data) one event may carry, in bytes.
// EventStoreDB refuses appends over about 1 MiB; the embedded store keeps the
// same limit so that a ledger can always be migrated.
const MaxEventSize = 1 << 20

// ConflictError is returned (wrapped as ErrConflict) when the expected
// revision does not match. Actual is the stream's last revision; HasStream
// is false when the stream has no event yet.
type ConflictError struct {
	Stream    string
	Expected  ExpectedRevision
	Actual    uint64
	HasStream bool
}

func (e *ConflictError) Error() string {
	actual := "no stream"
	if e.HasStream {
		actual = strconv.FormatUint(e.Actual, 10)
	}
	return fmt.Sprintf("%s: stream %q expected %s, actual %s", ErrConflict, e.Stream, e.Expected, actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

// ExpectedRevision is the optimistic-concurrency condition of an append.
// The zero value is Any.
type ExpectedRevision struct {
	kind expectKind
	rev  uint64
}

// Any appends whatever the stream's revision.
func Any() ExpectedRevision { return ExpectedRevision{kind: expectAny} }

// NoStream appends only if the stream has no event yet.
func NoStream() ExpectedRevision { return ExpectedRevision{kind: expectNoStream} }

// Exact appends only if the stream's last event is at revision rev (0-based).
func Exact(rev uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, rev: rev} }

// IsAny, IsNoStream report the kind; Revision returns the exact revision and
// true for Exact.
func (e ExpectedRevision) IsAny() bool      { return e.kind == expectAny }
func (e ExpectedRevision) IsNoStream() bool { return e.kind == expectNoStream }
func (e ExpectedRevision) Revision() (uint64, bool) {
	return e.rev, e.kind == expectExact
}

// Matches reports whether a stream whose last revision is last (hasStream
// false: no event yet) satisfies e.
func (e ExpectedRevision) Matches(last uint64, hasStream bool) bool {
	switch e.kind {
	case expectNoStream:
		return !hasStream
	case expectExact:
		return hasStream && last == e.rev
	default:
		return true
	}
}

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExact:
		return strconv.FormatUint(e.rev, 10)
	default:
		return "any"
	}
}

// Position is an event's place in the global log. The embedded stores use a
// dense sequence (Commit == Prepare == 1, 2, 3 …); EventStoreDB uses byte
// offsets that are not contiguous. Never assume pos+1 exists. Stores never
// assign the zero Position, which therefore means "before the first event".
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Seq returns the position of a dense store's n-th event.
func Seq(n uint64) Position { return Position{Commit: n, Prepare: n} }

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p.Commit == 0 && p.Prepare == 0 }

// Compare orders positions: -1, 0 or +1.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// Less reports p < q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// String renders "N" when commit and prepare agree, else "C/P". ParsePosition
// reads both forms.
func (p Position) String() string {
	if p.Commit == p.Prepare {
		return strconv.FormatUint(p.Commit, 10)
	}
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the output of Position.String.
func ParsePosition(s string) (Position, error) {
	c, pr, found := strings.Cut(s, "/")
	cv, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want a number or C/P", s)
	}
	if !found {
		return Seq(cv), nil
	}
	pv, err := strconv.ParseUint(pr, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want a number or C/P", s)
	}
	return Position{Commit: cv, Prepare: pv}, nil
}

// NewEvent is an event handed to Append: the envelope fields the writer
// decides. The store assigns stream, revision, position and the hash chain.
type NewEvent struct {
	ID            string    // UUID; deterministic from the command id (see EventID)
	Type          string    // stored name with version, e.g. "ActivityLogged.v1"
	Data          []byte    // JSON payload, at most MaxEventSize bytes
	OccurredAt    time.Time // business (effective) time
	RecordedAt    time.Time // system time; zero means the store stamps its own clock
	Actor         string    // principal, or "policy:<name>"
	CorrelationID string
	CausationID   string
}

// Event is a stored event with its full envelope.
type Event struct {
	ID            string
	Type          string
	Stream        string
	Revision      uint64
	Position      Position
	Data          []byte
	OccurredAt    time.Time // UTC
	RecordedAt    time.Time // UTC
	Actor         string
	CorrelationID string
	CausationID   string
	PrevHash      string // hex SHA-256 of the previous event of the stream; "" at revision 0
	Hash          string // ChainHash of this event
}

// AppendResult tells where an append's last event landed.
type AppendResult struct {
	Revision uint64   // the stream revision of the last appended event
	Position Position // the global position of the last appended event
}

// EventStore is the port every event store implements. All methods are safe
// for concurrent use.
//
// Append stores events atomically at the end of stream, after checking
// expected; on a mismatch it returns a *ConflictError (errors.Is ErrConflict)
// and stores nothing. If the events' ids are already stored in that stream at
// the revisions this append would have given them, Append stores nothing and
// returns the original result (idempotent retry). Invalid input returns
// ErrInvalidAppend and stores nothing. The store stamps RecordedAt when it is
// zero, assigns revisions and positions, and computes PrevHash and Hash with
// ChainHash.
//
// ReadStream yields the stream's events from revision from (inclusive) in
// revision order; an unknown stream yields nothing. ReadAll yields every event
// strictly after position after, in global order. Both stop at the first
// error, which they yield.
//
// Subscribe yields every event strictly after after, in global order: first
// those already stored (catch-up), then new ones as they are appended (live),
// with no gap and no duplicate at the boundary. It ends when ctx is done,
// yielding ctx.Err() last, or at the first other error, which it yields.
type EventStore interface {
	Append(ctx context.Context, stream string, expected ExpectedRevision, events []NewEvent) (AppendResult, error)
	ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[Event, error]
	ReadAll(ctx context.Context, after Position) iter.Seq2[Event, error]
	Subscribe(ctx context.Context, after Position) iter.Seq2[Event, error]
}

// EventTime is an event's position, the time it was recorded, its type and
// the time it occurred.
type EventTime struct {
	Position   Position
	RecordedAt time.Time
	Type       string
	OccurredAt time.Time
}

// TimeLister is an optional capability of an EventStore: the position,
// recorded time, type and occurred time of every event after a position, in
// global order, read without the events' contents. The as-of queries index the log with it
// when the store offers it (much faster than ReadAll), else with ReadAll.
type TimeLister interface {
	RecordedTimes(ctx context.Context, after Position) iter.Seq2[EventTime, error]
}

// FilteringReader is an optional capability of an EventStore: ReadAll of
// the events after a position up to upTo (zero: to the end) that keep
// accepts. keep sees each event's Position, Type, OccurredAt, RecordedAt and
// Data only (Data valid during the call alone); the store builds only the
// events kept, so reading a log of which most is skipped costs far less.
// The as-of replays read through it when the store offers it.
type FilteringReader interface {
	ReadAllWhere(ctx context.Context, after, upTo Position, keep func(Event) bool) iter.Seq2[Event, error]
}

// PositionReader is an optional capability of an EventStore: the events at
// the given positions (ascending), in that order; a position without an
// event is skipped. An as-of replay that knows where the events of the
// types it reads are (from TimeLister) reads those alone when they are few.
type PositionReader interface {
	ReadPositions(ctx context.Context, positions []Position) iter.Seq2[Event, error]
}

// ValidateAppend checks an append request the way every store must, before
// touching storage. The returned error wraps ErrInvalidAppend.
func ValidateAppend(stream string, events []NewEvent) error {
	if strings.TrimSpace(stream) == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidAppend)
	}
	if strings.HasPrefix(stream, "$") {
		return fmt.Errorf("%w: stream %q: names starting with $ are reserved", ErrInvalidAppend, stream)
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: stream %q: no events", ErrInvalidAppend, stream)
	}
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		switch {
		case !IsUUID(e.ID):
			return fmt.Errorf("%w: stream %q event %d: id %q is not a UUID", ErrInvalidAppend, stream, i, e.ID)
		case e.Type == "" || strings.HasPrefix(e.Type, "$"):
			return fmt.Errorf("%w: stream %q event %d: type %q is empty or reserved", ErrInvalidAppend, stream, i, e.Type)
		case len(e.Data) > MaxEventSize:
			return fmt.Errorf("%w: stream %q event %d: %d bytes exceeds the %d-byte limit", ErrInvalidAppend, stream, i, len(e.Data), MaxEventSize)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: stream %q event %d: id %s repeated in one append", ErrInvalidAppend, stream, i, e.ID)
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}

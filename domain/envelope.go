package domain

import (
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined on SHA-1 (RFC 9562); not used for security.
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Clock returns the current time. Services take one so tests can inject time.
type Clock func() time.Time

// SystemClock is the wall clock in UTC.
func SystemClock() time.Time { return time.Now().UTC() }

// eventIDNamespace is the UUIDv5 namespace of event ids derived from command ids.
var eventIDNamespace = [16]byte{0x6c, 0x65, 0x64, 0x67, 0x65, 0x72, 0x2d, 0x65, 0x76, 0x65, 0x6e, 0x74, 0x2d, 0x69, 0x64, 0x73}

// EventID derives the id of the index-th event produced by command commandID
// (a UUIDv5), so that retrying a command yields the same event ids and the
// store can recognise the retry.
func EventID(commandID string, index int) string {
	h := sha1.New() //nolint:gosec // see import
	h.Write(eventIDNamespace[:])
	h.Write([]byte(commandID))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(index))
	h.Write(b[:])
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return formatUUID(u)
}

// NewID returns a time-ordered random UUID (version 7): ids made in sequence
// sort in creation order, which keeps store indexes compact.
func NewID() string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	ms := uint64(time.Now().UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = (u[6] & 0x0f) | 0x70
	u[8] = (u[8] & 0x3f) | 0x80
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}

// IsUUID reports whether s is a UUID in canonical lower- or upper-case form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// ChainHash returns the hex SHA-256 of an event's canonical encoding, which
// links it to the previous event of its stream (prevHash, "" at revision 0).
//
// Canonical encoding (version 1), every field in this order:
//
//	"ledger-event-v1", prevHash, stream, revision, id, type,
//	occurred_at, recorded_at, actor, correlation_id, causation_id, data
//
// Strings and data are written as an 8-byte big-endian length followed by the
// bytes; revision as 8 bytes big-endian; times as 8 bytes big-endian of their
// Unix nanoseconds (UTC). Position is not hashed: it belongs to the store and
// differs between stores, so a migrated ledger keeps its hashes.
func ChainHash(prevHash string, e *Event) string {
	h := sha256.New()
	var n [8]byte
	writeBytes := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	writeString := func(s string) { writeBytes([]byte(s)) }
	writeUint := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	writeString("ledger-event-v1")
	writeString(prevHash)
	writeString(e.Stream)
	writeUint(e.Revision)
	writeString(e.ID)
	writeString(e.Type)
	writeUint(uint64(e.OccurredAt.UnixNano()))
	writeUint(uint64(e.RecordedAt.UnixNano()))
	writeString(e.Actor)
	writeString(e.CorrelationID)
	writeString(e.CausationID)
	writeBytes(e.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// Seal fills in e.PrevHash and e.Hash given the previous event's hash. Stores
// call it when they assign e's revision.
func Seal(prevHash string, e *Event) {
	e.PrevHash = prevHash
	e.Hash = ChainHash(prevHash, e)
}

// ErrBrokenChain reports a stream whose hash chain does not verify.
var ErrBrokenChain = errors.New("hash chain broken")

// ChainError says where a stream's chain breaks.
type ChainError struct {
	Stream   string
	Revision uint64
	Field    string // "prev_hash", "hash" or "revision"
	Expected string
	Found    string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("%s: stream %q revision %d: %s expected %s, found %s",
		ErrBrokenChain, e.Stream, e.Revision, e.Field, e.Expected, e.Found)
}

// Is makes errors.Is(err, ErrBrokenChain) true.
func (e *ChainError) Is(target error) bool { return target == ErrBrokenChain }

// ChainVerifier checks the hash chains of events read in any order that keeps
// each stream's events in revision order (a stream read, or the global log).
// It is not safe for concurrent use.
type ChainVerifier struct {
	last map[string]verifierTip
}

type verifierTip struct {
	rev  uint64
	hash string
}

// NewChainVerifier returns an empty verifier.
func NewChainVerifier() *ChainVerifier {
	return &ChainVerifier{last: make(map[string]verifierTip)}
}

// Check verifies e against the previous event seen of its stream and returns
// a *ChainError (errors.Is ErrBrokenChain) at the first broken link.
func (v *ChainVerifier) Check(e *Event) error {
	tip, seen := v.last[e.Stream]
	wantRev, wantPrev := uint64(0), ""
	if seen {
		wantRev, wantPrev = tip.rev+1, tip.hash
	}
	if e.Revision != wantRev {
		return &ChainError{Stream: e.Stream, Revision: e.Revision, Field: "revision",
			Expected: fmt.Sprint(wantRev), Found: fmt.Sprint(e.Revision)}
	}
	if e.PrevHash != wantPrev {
		return &ChainError{Stream: e.Stream, Revision: e.Revision, Field: "prev_hash", Expected: wantPrev, Found: e.PrevHash}
	}
	if want := ChainHash(e.PrevHash, e); e.Hash != want {
		return &ChainError{Stream: e.Stream, Revision: e.Revision, Field: "hash", Expected: want, Found: e.Hash}
	}
	v.last[e.Stream] = verifierTip{rev: e.Revision, hash: e.Hash}
	return nil
}

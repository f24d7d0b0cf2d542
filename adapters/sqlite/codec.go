package sqlite

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"

	"perfledger/domain"
)

// The meta column holds the envelope fields that no query filters on, in a
// compact binary form that decodes much faster than extra columns would scan:
//
//	byte    version (1)
//	string  id, type                       (uvarint length + bytes)
//	time    occurred_at, recorded_at       (tag byte: 0 zero time, 1 int64 Unix ns, 2 int64 s + uint32 ns)
//	string  actor, correlation_id, causation_id
//	byte    1 if prev_hash follows, else 0
//	[32]    prev_hash (raw SHA-256)
//	[32]    hash
const metaVersion = 1

var errBadMeta = errors.New("corrupt event meta")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Unix nanoseconds represent years 1678 to 2262; other times keep seconds
// and nanoseconds apart so that every time.Time round-trips exactly.
var (
	minNano = time.Unix(0, -1<<63)
	maxNano = time.Unix(0, 1<<63-1)
)

func appendTime(b []byte, t time.Time) []byte {
	switch {
	case t.IsZero():
		return append(b, 0)
	case !t.Before(minNano) && !t.After(maxNano):
		b = append(b, 1)
		return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	default:
		b = append(b, 2)
		b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
		return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	}
}

func appendHash(b []byte, h string) []byte {
	var raw [32]byte
	if _, err := hex.Decode(raw[:], []byte(h)); err != nil {
		panic("sqlite: hash is not hex SHA-256: " + h) // ChainHash always returns hex
	}
	return append(b, raw[:]...)
}

// encodeMeta appends e's meta encoding to b.
func encodeMeta(b []byte, e *domain.Event) []byte {
	b = append(b, metaVersion)
	b = appendString(b, e.ID)
	b = appendString(b, e.Type)
	b = appendTime(b, e.OccurredAt)
	b = appendTime(b, e.RecordedAt)
	b = appendString(b, e.Actor)
	b = appendString(b, e.CorrelationID)
	b = appendString(b, e.CausationID)
	if e.PrevHash == "" {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = appendHash(b, e.PrevHash)
	}
	return appendHash(b, e.Hash)
}

// metaReader decodes meta blobs. Its interner keeps one copy of the
// strings that repeat across events (types, actors), so decoding them costs
// no allocation. It is not safe for concurrent use.
type metaReader struct {
	b       []byte
	err     bool
	interns map[string]string
}

func newMetaReader() *metaReader { return &metaReader{interns: make(map[string]string)} }

func (r *metaReader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || uint64(len(r.b)-k) < n {
		r.err = true
		return nil
	}
	s := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return s
}

// interned returns the next string, shared with earlier equal ones.
func (r *metaReader) interned() string {
	b := r.bytes()
	if s, ok := r.interns[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.interns) < 4096 {
		r.interns[s] = s
	}
	return s
}

func (r *metaReader) take(n int) []byte {
	if len(r.b) < n {
		r.err = true
		return make([]byte, n)
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *metaReader) time() time.Time {
	switch r.take(1)[0] {
	case 0:
		return time.Time{}.UTC()
	case 1:
		return time.Unix(0, int64(binary.BigEndian.Uint64(r.take(8)))).UTC()
	case 2:
		sec := int64(binary.BigEndian.Uint64(r.take(8)))
		return time.Unix(sec, int64(binary.BigEndian.Uint32(r.take(4)))).UTC()
	}
	r.err = true
	return time.Time{}
}

// id returns only the event id of a meta blob.
func metaID(b []byte) (string, error) {
	r := metaReader{b: b}
	if r.take(1)[0] != metaVersion {
		return "", errBadMeta
	}
	id := string(r.bytes())
	if r.err {
		return "", errBadMeta
	}
	return id, nil
}

// decodeHead sets e's Type, OccurredAt and RecordedAt from meta blob b,
// and nothing else.
func (r *metaReader) decodeHead(b []byte, e *domain.Event) error {
	r.b, r.err = b, false
	if r.take(1)[0] != metaVersion {
		return errBadMeta
	}
	r.bytes() // id
	e.Type = r.interned()
	e.OccurredAt = r.time()
	e.RecordedAt = r.time()
	if r.err {
		return errBadMeta
	}
	return nil
}

// metaTimes reads the recorded and occurred times and the type (a part of
// b) of meta blob b.
func metaTimes(b []byte) (recorded, occurred time.Time, typ []byte, err error) {
	r := metaReader{b: b}
	if r.take(1)[0] != metaVersion {
		return time.Time{}, time.Time{}, nil, errBadMeta
	}
	r.bytes() // id
	typ = r.bytes()
	occurred = r.time()
	recorded = r.time()
	if r.err {
		return time.Time{}, time.Time{}, nil, errBadMeta
	}
	return recorded, occurred, typ, nil
}

// textRef locates a string field inside a page's shared text.
type textRef struct{ off, n int }

// textRefs locates an event's non-interned string fields.
type textRefs struct{ id, correlation, causation, prevHash, hash textRef }

// resolve sets e's string fields to their parts of text.
func (t *textRefs) resolve(text string, e *domain.Event) {
	at := func(r textRef) string { return text[r.off : r.off+r.n] }
	e.ID, e.CorrelationID, e.CausationID = at(t.id), at(t.correlation), at(t.causation)
	e.PrevHash, e.Hash = at(t.prevHash), at(t.hash)
}

// decode fills e's envelope fields from meta blob b.
func (r *metaReader) decode(b []byte, e *domain.Event) error {
	var refs textRefs
	text, err := r.decodeInto(b, e, &refs, nil)
	if err != nil {
		return err
	}
	refs.resolve(string(text), e)
	return nil
}

// decodeInto fills e's envelope fields from meta blob b, except the
// strings that refs locates in the returned text (text with them appended):
// a page of events then costs one string allocation, not five per event.
func (r *metaReader) decodeInto(b []byte, e *domain.Event, refs *textRefs, text []byte) ([]byte, error) {
	r.b, r.err = b, false
	if r.take(1)[0] != metaVersion {
		return text, errBadMeta
	}
	add := func(ref *textRef, s []byte) {
		ref.off, ref.n = len(text), len(s)
		text = append(text, s...)
	}
	addHash := func(ref *textRef, raw []byte) {
		ref.off, ref.n = len(text), 2*len(raw)
		text = hex.AppendEncode(text, raw)
	}
	add(&refs.id, r.bytes())
	e.Type = r.interned()
	e.OccurredAt = r.time()
	e.RecordedAt = r.time()
	e.Actor = r.interned()
	add(&refs.correlation, r.bytes())
	add(&refs.causation, r.bytes())
	refs.prevHash = textRef{}
	if r.take(1)[0] == 1 {
		addHash(&refs.prevHash, r.take(32))
	}
	addHash(&refs.hash, r.take(32))
	if r.err || len(r.b) != 0 {
		return text, errBadMeta
	}
	return text, nil
}

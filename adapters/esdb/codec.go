package esdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"perfledger/domain"
)

// envelope is the event metadata: every envelope field the store does not
// get from EventStoreDB itself. Times are RFC 3339 with nanoseconds, UTC.
type envelope struct {
	OccurredAt    time.Time `json:"occurred_at"`
	RecordedAt    time.Time `json:"recorded_at"`
	Actor         string    `json:"actor,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	PrevHash      string    `json:"prev_hash"`
	Hash          string    `json:"hash"`
	Revision      uint64    `json:"revision"`
}

// isSystem reports an EventStoreDB system event, which the domain never
// sees.
func isSystem(stream, typ string) bool {
	return strings.HasPrefix(stream, "$") || strings.HasPrefix(typ, "$")
}

// encode renders a sealed event for the client.
func encode(e *domain.Event) (client.EventData, error) {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return client.EventData{}, fmt.Errorf("%w: event id %q: %w", domain.ErrInvalidAppend, e.ID, err)
	}
	for _, f := range []struct{ name, v string }{{"actor", e.Actor}, {"correlation id", e.CorrelationID}, {"causation id", e.CausationID}} {
		if !utf8.ValidString(f.v) {
			// JSON would replace the bad bytes and break the hash chain.
			return client.EventData{}, fmt.Errorf("%w: event %s: %s is not valid UTF-8", domain.ErrInvalidAppend, e.ID, f.name)
		}
	}
	// No HTML escaping: metadata is never embedded in HTML, and plain
	// strings keep the decoder on its fast path.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err = enc.Encode(envelope{
		OccurredAt:    e.OccurredAt,
		RecordedAt:    e.RecordedAt,
		Actor:         e.Actor,
		CorrelationID: e.CorrelationID,
		CausationID:   e.CausationID,
		PrevHash:      e.PrevHash,
		Hash:          e.Hash,
		Revision:      e.Revision,
	})
	if err != nil {
		return client.EventData{}, fmt.Errorf("esdb: encode envelope: %w", err)
	}
	meta := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	return client.EventData{
		EventID:     id,
		EventType:   e.Type,
		ContentType: client.ContentTypeJson,
		Data:        data,
		Metadata:    meta,
	}, nil
}

// decode turns a stored event into a domain event. Its envelope must be the
// one encode wrote.
func decode(r *client.RecordedEvent) (domain.Event, error) {
	var env envelope
	if !env.parse(r.UserMetadata) {
		env = envelope{}
		err := json.Unmarshal(r.UserMetadata, &env)
		if err != nil {
			return domain.Event{}, &decodeError{fmt.Errorf("esdb: event %s of %q at revision %d: envelope metadata: %w", r.EventID, r.StreamID, r.EventNumber, err)}
		}
	}
	return domain.Event{
		ID:            r.EventID.String(),
		Type:          r.EventType,
		Stream:        r.StreamID,
		Revision:      r.EventNumber,
		Position:      domain.Position{Commit: r.Position.Commit, Prepare: r.Position.Prepare},
		Data:          r.Data,
		OccurredAt:    env.OccurredAt.UTC(),
		RecordedAt:    env.RecordedAt.UTC(),
		Actor:         env.Actor,
		CorrelationID: env.CorrelationID,
		CausationID:   env.CausationID,
		PrevHash:      env.PrevHash,
		Hash:          env.Hash,
	}, nil
}

// appendSize is what EventStoreDB counts against its maximum append size.
func appendSize(evs []client.EventData) int {
	n := 0
	for _, e := range evs {
		n += len(e.Data) + len(e.Metadata) + 2*len(e.EventType)
	}
	return n
}

// decodeError is an event the store cannot decode: not written by this
// adapter, or damaged. Retrying does not help.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// parse is the fast path of decoding the metadata encode writes: a flat
// JSON object of unescaped strings and one unsigned number. It reports false
// (and the caller falls back to encoding/json) on anything else.
func (env *envelope) parse(b []byte) bool {
	p := envParser{b: b}
	p.skip()
	if !p.eat('{') {
		return false
	}
	for {
		p.skip()
		key, ok := p.str()
		if !ok {
			return false
		}
		p.skip()
		if !p.eat(':') {
			return false
		}
		p.skip()
		if string(key) == "revision" {
			n, ok := p.uint()
			if !ok {
				return false
			}
			env.Revision = n
		} else {
			v, ok := p.str()
			if !ok {
				return false
			}
			switch string(key) {
			case "occurred_at", "recorded_at":
				t, err := time.Parse(time.RFC3339Nano, string(v))
				if err != nil {
					return false
				}
				if string(key) == "occurred_at" {
					env.OccurredAt = t
				} else {
					env.RecordedAt = t
				}
			case "actor":
				env.Actor = string(v)
			case "correlation_id":
				env.CorrelationID = string(v)
			case "causation_id":
				env.CausationID = string(v)
			case "prev_hash":
				env.PrevHash = string(v)
			case "hash":
				env.Hash = string(v)
			default:
				return false
			}
		}
		p.skip()
		switch {
		case p.eat(','):
		case p.eat('}'):
			p.skip()
			return p.i == len(p.b)
		default:
			return false
		}
	}
}

type envParser struct {
	b []byte
	i int
}

func (p *envParser) skip() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *envParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (p *envParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			if !utf8.Valid(p.b[start:j]) {
				return nil, false
			}
			p.i = j + 1
			return p.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// uint reads an unsigned decimal that fits 64 bits.
func (p *envParser) uint() (uint64, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		d := uint64(p.b[p.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	return n, p.i > start
}

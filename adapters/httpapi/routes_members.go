package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"perfledger/domain"
)

// historyItem is one event of a member's stream as the API shows it.
type historyItem struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	Revision   uint64          `json:"revision"`
	Position   string          `json:"position"`
	OccurredAt time.Time       `json:"occurred_at"`
	RecordedAt time.Time       `json:"recorded_at"`
	Actor      string          `json:"actor"`
	Data       json.RawMessage `json:"data"`
	Hash       string          `json:"hash"`
}

// profileView replaces the ciphertext of a MemberProfileRecorded.
type profileView struct {
	MemberID string          `json:"member_id"`
	Profile  *domain.Profile `json:"profile,omitempty"`
	Erased   bool            `json:"erased,omitempty"`
	Redacted bool            `json:"redacted,omitempty"`
}

// canSeeProfile: personal data is for HR and auditors, and for the member.
func (c *call) canSeeProfile(member string) bool {
	switch c.p.Role {
	case RoleHR, RoleAuditor:
		return true
	}
	return c.p.MemberID == member
}

func (s *Server) memberRoutes() []route {
	return []route{{
		method: http.MethodGet, path: "/v1/members/{member_id}/history", tag: "audit", roles: memberReaders, list: true,
		summary: "A member's full timeline (every event of their stream, voided ones included), optionally as known at a past time",
		query: []queryParam{
			{name: "as_of", desc: "RFC 3339 time, or YYYY-MM-DD for the end of that day (UTC): only events recorded up to then"},
		},
		resp: Page[historyItem]{},
		handle: func(c *call) (any, error) {
			member := c.param("member_id")
			q := c.query()
			limit, cursor := q.limit(), q.str("cursor")
			if q.err != nil {
				return nil, q.err
			}
			var asOf time.Time
			if raw := q.str(asOfParam); raw != "" {
				t, err := parseAsOf(raw)
				if err != nil {
					return nil, err
				}
				asOf = t
			}
			from := uint64(0)
			if cursor != "" {
				n, err := strconv.ParseUint(cursor, 10, 64)
				if err != nil {
					return nil, errInvalid(`query parameter "cursor": not a cursor this server returned; start again without it`)
				}
				from = n
			}
			if err := c.allowMember(member); err != nil {
				return nil, err
			}
			page := Page[historyItem]{Items: []historyItem{}}
			var last domain.Position
			found := false
			for ev, err := range c.s.cfg.Log.ReadStream(c.ctx, domain.MemberStream(member), from) {
				if err != nil {
					return nil, err
				}
				found = true
				if !asOf.IsZero() && ev.RecordedAt.After(asOf) {
					continue // not known yet at as_of
				}
				if len(page.Items) == limit {
					page.NextCursor = strconv.FormatUint(ev.Revision, 10)
					break
				}
				item := historyItem{EventID: ev.ID, Type: ev.Type, Revision: ev.Revision, Position: ev.Position.String(),
					OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Actor: ev.Actor, Data: ev.Data, Hash: ev.Hash}
				if ev.Type == domain.TypeMemberProfileRecorded {
					data, err := c.profileData(member, ev)
					if err != nil {
						return nil, err
					}
					item.Data = data
				}
				page.Items = append(page.Items, item)
				last = ev.Position
			}
			if !found && from == 0 {
				return nil, errNotFound(fmt.Sprintf("member %q does not exist", member))
			}
			c.position = last
			page.Position = last.String()
			return page, nil
		},
	}}
}

// profileData shows a profile event decrypted to those who may see it,
// "erased" once the member was forgotten, and "redacted" to others.
func (c *call) profileData(member string, ev domain.Event) (json.RawMessage, error) {
	v := profileView{MemberID: member}
	if !c.canSeeProfile(member) {
		v.Redacted = true
	} else {
		p, err := domain.DecodePayload(ev.Type, ev.Data)
		if err != nil {
			return nil, err
		}
		rec, ok := p.(*domain.MemberProfileRecorded)
		if !ok {
			return nil, fmt.Errorf("profile event decodes as %T", p)
		}
		prof, erased, err := domain.OpenProfile(c.ctx, c.s.cfg.Keys, rec)
		if err != nil {
			return nil, err
		}
		if erased {
			v.Erased = true
		} else {
			v.Profile = &prof
		}
	}
	return json.Marshal(v)
}

package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"perfledger/domain"
)

// verifyReport is the answer of GET /v1/audit/verify.
type verifyReport struct {
	OK       bool   `json:"ok"`
	Events   uint64 `json:"events"`
	Streams  int    `json:"streams"`
	Position string `json:"position"` // the last event checked
	// Digest is the ledger digest (a Merkle root over the event hashes in
	// global order) up to Position; empty when a link is broken.
	Digest string `json:"digest,omitempty"`
	// DigestMatches answers digest=D&at=P: whether the ledger up to P still
	// has digest D.
	DigestMatches *bool `json:"digest_matches,omitempty"`
	// Broken is the first broken link, when OK is false.
	Broken *brokenLink `json:"broken,omitempty"`
}

type brokenLink struct {
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	Field    string `json:"field"` // prev_hash, hash or revision
	Expected string `json:"expected"`
	Found    string `json:"found"`
	Message  string `json:"message"`
}

func (s *Server) verifyRoute() route {
	return route{
		method: http.MethodGet, path: "/v1/audit/verify", tag: "audit", roles: adminReader,
		summary: "Recompute every stream's hash chain (up to position at, or the whole log), report the first broken link and the ledger digest; with digest and at, prove the ledger up to at unchanged (ok false on a mismatch)",
		query: []queryParam{
			{name: "at", desc: "stop at this position (the one a digest was taken at)"},
			{name: "digest", desc: "a digest written down earlier at position at: digest_matches says whether it still holds"},
		},
		resp: verifyReport{},
		handle: func(c *call) (any, error) {
			q := c.query()
			at := q.position("at")
			digest := q.str("digest")
			if q.err != nil {
				return nil, q.err
			}
			if digest != "" && at.IsZero() {
				return nil, errInvalid(`query parameter "digest" needs "at", the position it was taken at`)
			}
			v, err := domain.VerifyLog(c.ctx, c.s.cfg.Log, at)
			rep := verifyReport{Events: v.Events, Streams: v.Streams, Position: v.Last.String(), Digest: v.Digest}
			var ce *domain.ChainError
			switch {
			case errors.As(err, &ce):
				rep.Broken = &brokenLink{Stream: ce.Stream, Revision: ce.Revision, Field: ce.Field, Expected: ce.Expected, Found: ce.Found, Message: err.Error()}
			case errors.Is(err, domain.ErrNoSuchPosition):
				return nil, errInvalid(fmt.Sprintf(`query parameter "at": %v`, err))
			case err != nil:
				return nil, err
			}
			rep.OK = rep.Broken == nil
			if digest != "" && rep.OK {
				m := digest == rep.Digest
				rep.DigestMatches = &m
				rep.OK = m
			}
			c.position = v.Last
			return rep, nil
		},
	}
}

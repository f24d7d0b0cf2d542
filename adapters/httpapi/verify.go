package httpapi

import (
	"errors"
	"net/http"

	"perfledger/domain"
)

// verifyReport is the answer of GET /v1/audit/verify.
type verifyReport struct {
	OK       bool   `json:"ok"`
	Events   uint64 `json:"events"`
	Streams  int    `json:"streams"`
	Position string `json:"position"` // the last event checked
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
		summary: "Recompute every stream's hash chain over the whole log and report the first broken link",
		resp:    verifyReport{},
		handle: func(c *call) (any, error) {
			v := domain.NewChainVerifier()
			var (
				rep     verifyReport
				last    domain.Position
				streams = map[string]struct{}{}
			)
			for e, err := range c.s.cfg.Log.ReadAll(c.ctx, domain.Position{}) {
				if err != nil {
					return nil, err
				}
				rep.Events++
				last = e.Position
				streams[e.Stream] = struct{}{}
				if err := v.Check(&e); err != nil {
					var ce *domain.ChainError
					bl := &brokenLink{Stream: e.Stream, Revision: e.Revision, Message: err.Error()}
					if errors.As(err, &ce) {
						bl.Stream, bl.Revision, bl.Field, bl.Expected, bl.Found = ce.Stream, ce.Revision, ce.Field, ce.Expected, ce.Found
					}
					rep.Broken = bl
					break
				}
			}
			rep.OK = rep.Broken == nil
			rep.Streams = len(streams)
			rep.Position = last.String()
			c.position = last
			return rep, nil
		},
	}
}

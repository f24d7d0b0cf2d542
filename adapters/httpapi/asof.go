package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"perfledger/projections"
)

// AsOf opens the read models as the ledger knew them at a past recorded
// time; *projections.AsOf implements it. The view is released with the
// returned function once the request is answered.
type AsOf interface {
	// AtScope opens the view as of t of the named read models (all when
	// none is named), for the queries of scope (the zero scope: any query).
	AtScope(ctx context.Context, t time.Time, scope projections.AsOfScope, names ...string) (*projections.AsOfView, func(), error)
}

var _ AsOf = (*projections.AsOf)(nil)

// modelSource is where a read's queries go: the serving runner or an as-of
// view.
type modelSource interface {
	DB() *sql.DB
	Current(name string) projections.Projector
}

// models returns the read models this request reads: the as-of view when the
// request asked for one, else the serving ones.
func (c *call) models() modelSource {
	if c.view != nil {
		return c.view
	}
	return c.s.cfg.ReadModels
}

// asOfParam is the query parameter of a past recorded time.
const asOfParam = "as_of"

// asOfQuery documents as_of on the read-model routes.
var asOfQuery = queryParam{name: asOfParam,
	desc: "RFC 3339 recorded time: answer from the events recorded up to then, replayed through the same read-model code (YYYY-MM-DD means the end of that day, UTC)"}

// openAsOf reads as_of and, when present, opens the view the request then
// reads. The returned function releases it (a no-op without as_of).
func (s *Server) openAsOf(c *call) (func(), error) {
	raw := c.query().str(asOfParam)
	if raw == "" || !c.rt.asOf {
		return func() {}, nil
	}
	if _, err := time.Parse(time.DateOnly, raw); err == nil && c.rt.asOfTimeOnly {
		return func() {}, nil
	}
	t, err := parseAsOf(raw)
	if err != nil {
		return nil, err
	}
	if s.cfg.AsOf == nil {
		return nil, &apiError{Code: codeUnavailable, Message: "as_of is not available on this server"}
	}
	var scope projections.AsOfScope
	if c.rt.asOfScope != nil {
		if scope, err = c.rt.asOfScope(c); err != nil {
			return nil, err
		}
	}
	if err := checkParams(c); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.AsOfWait)
	v, release, err := s.cfg.AsOf.AtScope(ctx, t, scope, c.rt.reads...)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
			return nil, &apiError{Code: codeUnavailable, RetryAfter: 10, cause: err,
				Message: "the read models as of " + t.Format(time.RFC3339Nano) + " are still being replayed; ask again in a few seconds"}
		}
		return nil, err
	}
	c.view, c.asOf = v, t
	return release, nil
}

// errChecked stops a handler run by checkParams at its first read model.
var errChecked = errors.New("httpapi: the parameters are checked")

// checkParams refuses a request's bad parameters (a limit out of range, a
// scope without its id, a malformed date) before an as-of replay, which
// can take seconds: it runs the route's handler until it asks for its
// first read model (errChecked). Handlers read and check every parameter
// first.
func checkParams(c *call) error {
	c.checking = true
	defer func() { c.checking = false }()
	if _, err := c.rt.handle(c); err != nil && !errors.Is(err, errChecked) {
		return err
	}
	return nil
}

// cardScope is the as_of scope of a member's scorecard of the period named
// by the path parameter name: the replay keeps only the events that can
// change that member's card (projections.LeaderboardCardScope). A caller
// who may not read the member's cards, or a period that does not parse, is
// refused before anything is replayed.
func cardScope(name string) func(c *call) (projections.AsOfScope, error) {
	return func(c *call) (projections.AsOfScope, error) {
		m := c.param("member_id")
		if err := c.allowMember(m); err != nil {
			return projections.AsOfScope{}, err
		}
		raw := c.param(name)
		scope, err := projections.LeaderboardCardScope(m, raw)
		if err != nil {
			return projections.AsOfScope{}, errInvalid(fmt.Sprintf("%s %q: %v", name, raw, err))
		}
		return scope, nil
	}
}

// boardScope is the as_of scope of a leaderboard: the boards of the metric
// in the path for the period in the query replay only the events that can
// change that metric's rows (projections.LeaderboardBoardScope).
func boardScope(c *call) (projections.AsOfScope, error) {
	metric, err := boardMetric(c)
	if err != nil {
		return projections.AsOfScope{}, err
	}
	q := c.query()
	raw := q.period("period", true)
	if q.err != nil {
		return projections.AsOfScope{}, q.err
	}
	scope, err := projections.LeaderboardBoardScope(metric, raw)
	if err != nil {
		return projections.AsOfScope{}, errInvalid(fmt.Sprintf("period %q: %v", raw, err))
	}
	return scope, nil
}

// auditScope is the as_of scope of an audit trail read: about one member
// (member_id) or of one type (type), it replays only the events those
// filters can show or mark (projections.AuditScope); otherwise the whole
// trail.
func auditScope(c *call) (projections.AsOfScope, error) {
	q := c.query()
	return projections.AuditScope(projections.AuditQuery{MemberID: q.str("member_id"), Type: q.str("type")}), nil
}

// parseAsOf reads an RFC 3339 time, or a date meaning the end of that day.
func parseAsOf(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24*time.Hour - time.Nanosecond), nil
	}
	return time.Time{}, errInvalid(`query parameter "as_of": want an RFC 3339 time such as 2026-11-27T09:00:00Z, or a date YYYY-MM-DD`)
}

// setAsOfHeader says which recorded time a read reflects.
func (c *call) setAsOfHeader(w http.ResponseWriter) {
	if c.view != nil {
		w.Header().Set("Ledger-As-Of", c.asOf.Format(time.RFC3339Nano))
	}
}

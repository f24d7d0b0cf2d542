package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"perfledger/domain"
	"perfledger/projections"
)

// route is one entry of the route table: everything the router, the
// authorisation, the OpenAPI document and the tests need to know.
type route struct {
	method  string
	path    string // chi pattern; OpenAPI uses the same {param} syntax
	summary string
	tag     string
	// roles may call the route at all; finer rules (own data, team subtree)
	// are checked by the handler with call.allowMember / call.allowTeam.
	roles []Role
	// write routes take a JSON body and the Idempotency-Key header, and
	// answer 201 with a writeReply.
	write bool
	// public routes need no token.
	public bool
	// secret routes answer with a secret (a new token): their responses are
	// never stored, so they refuse Idempotency-Key.
	secret bool
	// body is a value of the request body type (nil: no body), for decoding
	// docs and fuzzing.
	body any
	// bodyOptional: an empty body means {}.
	bodyOptional bool
	// resp is a value of the response type, for the OpenAPI document.
	resp any
	// list routes take cursor and limit and can answer text/csv.
	list bool
	// query documents the query parameters (besides cursor, limit and
	// min_position, added for reads).
	query []queryParam
	// model names the read model a public read comes from; its responses
	// are cached per query and served again while that read model's
	// checkpoint has not moved (the same position gives the same answer).
	model string
	// asOf routes read the read models and take as_of (a past recorded
	// time; see asof.go). asOfTimeOnly: only a full RFC 3339 time is one
	// (the directory reads a bare date as the day of its chart).
	asOf, asOfTimeOnly bool
	// reads names the read models the handler queries, when known: an
	// as_of request replays only those (empty: every read model).
	reads []string
	// asOfScope, when set, narrows an as_of replay to the events that can
	// change this request's answer (projections.AsOfScope).
	asOfScope func(c *call) (projections.AsOfScope, error)
	// handle does the work. It returns the value to encode (JSON, or CSV for
	// a tabular value when asked) or an error for the one error renderer.
	handle func(c *call) (any, error)
}

type queryParam struct {
	name, desc string
	required   bool
}

func (rt *route) allows(role Role) bool {
	for _, r := range rt.roles {
		if r == role {
			return true
		}
	}
	return false
}

// call is one request as handlers see it.
type call struct {
	s         *Server
	rt        *route
	r         *http.Request
	ctx       context.Context
	p         Principal
	body      []byte
	commandID string
	position  domain.Position       // what a read reflects
	view      *projections.AsOfView // the read models as of asOf, when asked
	asOf      time.Time
	// checking: the handler runs only to check the request's parameters,
	// before an as-of replay (checkParams); it stops at its first read model.
	checking bool
}

// param returns a path parameter.
func (c *call) param(name string) string { return chi.URLParam(c.r, name) }

// query returns a reader of the query parameters.
func (c *call) query() *params { return &params{r: c.r} }

// decode decodes the JSON body strictly into v.
func (c *call) decode(v any) error { return decodeStrict(c.body, v) }

// meta is the command metadata of this request.
func (c *call) meta() domain.CommandMeta {
	return domain.CommandMeta{
		CommandID:     c.commandID,
		Actor:         c.p.Actor(),
		CorrelationID: c.commandID,
	}
}

// writeReply is the answer to every successful write.
type writeReply struct {
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	Position string `json:"position"`
	// ID is the id of what the command created or touched, when it has one
	// (the new activity, sale, target, promotion …).
	ID     string   `json:"id,omitempty"`
	Events []string `json:"events"`
}

// exec runs cmd with this request's metadata and turns the result into the
// write reply.
func (c *call) exec(cmd domain.Command, id string) (any, error) {
	start := time.Now()
	res, err := c.s.cfg.Commands.Execute(c.ctx, cmd, c.meta())
	c.s.metrics.observeAppend(time.Since(start), err)
	if err != nil {
		return nil, err
	}
	rep := writeReply{Stream: res.Stream, Revision: res.Revision, Position: res.Position.String(), ID: id, Events: make([]string, len(res.Events))}
	for i, e := range res.Events {
		rep.Events[i] = e.ID
	}
	return rep, nil
}

// statusWriter remembers the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap turns a route into an http.Handler: panic recovery, metrics,
// authentication, rate limiting, role check, body limit, idempotency,
// min_position, and rendering.
func (s *Server) wrap(rt *route) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				s.log.Error("panic serving request", "route", rt.path, "method", rt.method, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if w.status == 0 {
					writeError(w, &apiError{Code: codeInternal, Message: "internal error; it has been logged"})
				}
			}
			status := w.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(rt.path, rt.method, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		}()
		c := &call{s: s, rt: rt, r: r, ctx: r.Context()}
		if err := s.serve(w, c); err != nil {
			s.fail(w, c, err)
		}
	})
}

// fail renders err, logging refusals and internal errors.
func (s *Server) fail(w http.ResponseWriter, c *call, err error) {
	ae := toAPIError(err)
	switch ae.Code {
	case codeForbidden:
		s.log.Warn("request refused", "route", c.rt.path, "method", c.rt.method,
			"token_id", c.p.TokenID, "role", string(c.p.Role), "member_id", c.p.MemberID, "reason", ae.Message)
	case codeInternal, codeUnavailable, codeTimeout:
		switch {
		case errors.Is(c.ctx.Err(), context.Canceled):
			// The client went away (closed the connection): nothing failed here.
			s.log.Info("request abandoned by the client", "route", c.rt.path, "method", c.rt.method, "token_id", c.p.TokenID, "error", err)
		case ae.Code == codeUnavailable && ae.RetryAfter > 0:
			// Expected and temporary (an as-of replay still running, the read
			// models catching up): the client was told when to ask again.
			s.log.Warn("request deferred", "route", c.rt.path, "method", c.rt.method, "token_id", c.p.TokenID,
				"retry_after_seconds", ae.RetryAfter, "error", err)
		default:
			s.log.Error("request failed", "route", c.rt.path, "method", c.rt.method, "token_id", c.p.TokenID, "error", err)
		}
	}
	writeError(w, ae)
}

func (s *Server) serve(w http.ResponseWriter, c *call) error {
	rt := c.rt
	if !rt.public {
		p, err := s.authenticate(c.r)
		if err != nil {
			return err
		}
		c.p = p
		if ok, wait := s.limit.allow(p.TokenID, s.clock()); !ok {
			secs := int(wait/time.Second) + 1
			return &apiError{Code: codeRateLimited, Message: "too many requests for this token; retry after " + strconv.Itoa(secs) + " s", RetryAfter: secs}
		}
		if !rt.allows(p.Role) {
			return errForbidden(fmt.Sprintf("the %s role may not %s %s", p.Role, rt.method, rt.path))
		}
	}
	if rt.write {
		return s.serveWrite(w, c)
	}
	return s.serveRead(w, c)
}

// authenticate reads the bearer token. It never logs or echoes the secret.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return Principal{}, &apiError{Code: codeUnauthenticated, Message: "send Authorization: Bearer <token>"}
	}
	p, err := s.tokens.Authenticate(r.Context(), strings.TrimSpace(secret))
	if errors.Is(err, errBadToken) {
		return Principal{}, &apiError{Code: codeUnauthenticated, Message: "the token is unknown or revoked"}
	}
	if err != nil {
		return Principal{}, err
	}
	return p, nil
}

func (s *Server) serveRead(w http.ResponseWriter, c *call) error {
	q := c.query()
	if min := q.position("min_position"); q.err != nil {
		return q.err
	} else if !min.IsZero() {
		if err := s.waitFor(c, min); err != nil {
			return err
		}
	}
	release, err := s.openAsOf(c)
	if err != nil {
		return err
	}
	defer release()
	c.setAsOfHeader(w)
	if c.rt.model != "" && c.view == nil {
		return s.serveCached(w, c)
	}
	v, err := c.rt.handle(c)
	if err != nil {
		return err
	}
	if !c.position.IsZero() {
		w.Header().Set("Ledger-Position", c.position.String())
	}
	if t, ok := v.(tabular); ok && wantsCSV(c.r) {
		return writeCSV(w, t)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// waitFor waits, at most WaitTimeout, until the read models reflect min.
func (s *Server) waitFor(c *call, min domain.Position) error {
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WaitTimeout)
	err := s.cfg.ReadModels.WaitFor(ctx, min)
	cancel()
	if err != nil {
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		return &apiError{Code: codeUnavailable, RetryAfter: 1, cause: err,
			Message: fmt.Sprintf("the read models have not reached position %s within %s; retry later", min, s.cfg.WaitTimeout)}
	}
	return nil
}

func (s *Server) serveWrite(w http.ResponseWriter, c *call) error {
	body, err := readBody(w, c.r)
	if err != nil {
		return err
	}
	if ct := c.r.Header.Get("Content-Type"); ct != "" && len(body) > 0 {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &apiError{Code: codeUnsupported, Message: "send the body as JSON with Content-Type: application/json"}
		}
	}
	c.body = body
	key := c.r.Header.Get("Idempotency-Key")
	if key == "" {
		c.commandID = domain.NewID()
		v, err := c.rt.handle(c)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, v)
		return nil
	}
	if c.rt.secret {
		return errInvalid("Idempotency-Key is not supported here: the response holds a secret, which is never stored")
	}
	if len(key) > MaxIdempotencyKey || strings.TrimSpace(key) != key {
		return errInvalid(fmt.Sprintf("Idempotency-Key: at most %d bytes, no surrounding spaces", MaxIdempotencyKey))
	}
	hash := requestHash(c.rt.method, c.r.URL.Path, body)
	who := c.p.TokenID
	prev, found, err := s.idem.lookup(c.ctx, key)
	if err != nil {
		return err
	}
	if found {
		return replay(w, prev, who, hash)
	}
	c.commandID = key
	v, err := c.rt.handle(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	stored, err := s.idem.save(c.ctx, key, storedResponse{Principal: who, BodyHash: hash, Status: http.StatusCreated, ContentType: "application/json", Body: buf.Bytes()})
	if err != nil {
		return err
	}
	return replay(w, stored, who, hash)
}

// replay answers with a stored response if it was stored for the same
// principal and the same request; else 409.
func replay(w http.ResponseWriter, r storedResponse, who string, hash [32]byte) error {
	if r.Principal != who || r.BodyHash != hash {
		return &apiError{Code: codeConflict, Message: "this Idempotency-Key was already used for a different request; use a new key"}
	}
	h := w.Header()
	h.Set("Content-Type", r.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
	return nil
}

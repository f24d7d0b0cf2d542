package domain

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// CommandMeta is the envelope information of a command.
type CommandMeta struct {
	// CommandID identifies the command (required; a UUID or any non-empty
	// string, e.g. an Idempotency-Key). The i-th event it produces gets the id
	// EventID(CommandID, i), so executing the same command id again appends
	// nothing and returns the original result.
	CommandID     string
	Actor         string // the authenticated principal, or "policy:<name>"
	CorrelationID string
	CausationID   string
}

// Result tells where a command's events landed. Stream and Revision are
// those of the last event; Position is the global position of the last
// event. Events are the command's events with their envelope; for a fresh
// append only the last one carries its Position (the others' are zero) and
// PrevHash/Hash are empty; a repeated command returns the stored events as
// read back from the store.
type Result struct {
	Stream   string
	Revision uint64
	Position Position
	Events   []Event
}

// Service executes commands: load the target stream's state (cached),
// load the facts the command needs from other streams, decide, append with
// the exact expected revision, and on a conflict catch up and decide again
// (bounded). It is safe for concurrent use; commands on one stream are
// serialised inside one Service, and several Services (processes) on one
// store stay correct through the expected revision.
type Service struct {
	store    EventStore
	keys     KeyStore
	clock    Clock
	retries  int
	factsTTL time.Duration
	cache    *stateCache
	used     *usedIDs
}

// Option configures a Service.
type Option func(*Service)

// WithCacheSize bounds how many streams' decided states are kept (LRU;
// default 10,000). A stream evicted is reloaded whole the next time.
func WithCacheSize(n int) Option {
	return func(s *Service) {
		if n > 0 {
			s.cache.max = n
		}
	}
}

// WithRetries sets how many times a command is decided again after a
// revision conflict before the conflict is returned (default 5).
func WithRetries(n int) Option {
	return func(s *Service) {
		if n >= 0 {
			s.retries = n
		}
	}
}

// WithFactsTTL sets how long the cached state of a stream that a command
// only reads (the team of a transfer, the member of a rating …) is trusted
// before it is read again from the store (default 1 s). Writes made through
// this Service are always seen at once; the TTL bounds how stale a fact
// written by another process can be. A stream a command appends to never
// depends on it: the append's exact expected revision proves it current.
func WithFactsTTL(d time.Duration) Option {
	return func(s *Service) {
		if d >= 0 {
			s.factsTTL = d
		}
	}
}

// NewService returns a Service over store, with keys for personal data and
// clock for "now" (nil: SystemClock).
func NewService(store EventStore, keys KeyStore, clock Clock, opts ...Option) *Service {
	if clock == nil {
		clock = SystemClock
	}
	s := &Service{store: store, keys: keys, clock: clock, retries: 5, factsTTL: time.Second,
		cache: &stateCache{max: 10000, ll: list.New(), m: map[string]*list.Element{}},
		used:  &usedIDs{m: map[string]string{}, ring: make([]string, usedIDsKept)}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Execute runs cmd. It returns a domain error (ErrInvalid, ErrNotFound,
// ErrRuleViolated, ErrAlreadyExists, ErrForbidden) when the command is
// refused, an error wrapping ErrConflict when the stream kept changing
// under it, or a store error. Executing a command id again returns the
// original result and appends nothing (while that command is among the
// last 32 of its stream; older repeats are decided again and usually
// refused with ErrAlreadyExists). Reusing a recent command id for a command
// on another stream is refused with ErrAlreadyExists (this Service
// remembers the last 65,536 command ids; ids must be unique per command).
func (s *Service) Execute(ctx context.Context, cmd Command, meta CommandMeta) (Result, error) {
	if cmd == nil {
		return Result{}, invalidf("no command")
	}
	if strings.TrimSpace(meta.CommandID) == "" {
		return Result{}, invalidf("%s: a command id is required", cmd.CommandName())
	}
	var err error
	for attempt := 0; attempt <= s.retries; attempt++ {
		var res Result
		res, err = s.try(ctx, cmd, meta)
		if !errors.Is(err, ErrConflict) {
			return res, err
		}
	}
	return Result{}, fmt.Errorf("%s: gave up after %d attempts: %w", cmd.CommandName(), s.retries+1, err)
}

func (s *Service) try(ctx context.Context, cmd Command, meta CommandMeta) (Result, error) {
	now := s.clock().UTC()
	f, err := s.facts(ctx, cmd.refs(), now)
	if err != nil {
		return Result{}, err
	}
	stream, err := cmd.target(f)
	if err != nil {
		return Result{}, err
	}
	if other, ok := s.used.stream(meta.CommandID); ok && other != stream {
		return Result{}, existsf("command id %q was already used for a command on %s; use a new id for a new command", meta.CommandID, other)
	}
	e := s.cache.get(stream)
	e.mu.Lock()
	res, forgotten, err := s.decideAndAppend(ctx, e, cmd, meta, f, now)
	e.mu.Unlock()
	if err != nil {
		return Result{}, err
	}
	s.used.add(meta.CommandID, stream)
	if forgotten != "" && s.keys != nil {
		if err := s.keys.Destroy(ctx, forgotten); err != nil {
			return Result{}, fmt.Errorf("forget member %q: event stored but key not destroyed (retry the command): %w", forgotten, err)
		}
	}
	return res, nil
}

// decideAndAppend runs with e locked. It returns the member whose key must
// be destroyed, if the command forgot one.
func (s *Service) decideAndAppend(ctx context.Context, e *entry, cmd Command, meta CommandMeta, f Facts, now time.Time) (Result, string, error) {
	// A cached state in sync with the store's last known revision needs no
	// read: the append's exact expected revision proves it is still current,
	// and a conflict marks it stale so that the retry catches up.
	if !e.synced {
		if err := s.catchUp(ctx, e); err != nil {
			return Result{}, "", err
		}
	}
	if rev, ok := e.seen(EventID(meta.CommandID, 0)); ok {
		return s.readBack(ctx, e.stream, rev, meta.CommandID)
	}
	payloads, err := cmd.Decide(e.state, f)
	if err != nil {
		return Result{}, "", err
	}
	if len(payloads) == 0 {
		return Result{Stream: e.stream, Revision: e.rev}, "", nil
	}
	if rp, ok := cmd.(RecordProfile); ok {
		for i, p := range payloads {
			if _, ok := p.(*MemberProfileRecorded); ok {
				if s.keys == nil {
					return Result{}, "", fmt.Errorf("record profile: the service has no key store")
				}
				sealed, err := SealProfile(ctx, s.keys, rp.MemberID, rp.Profile)
				if err != nil {
					return Result{}, "", err
				}
				payloads[i] = sealed
			}
		}
	}
	evs := make([]NewEvent, len(payloads))
	for i, p := range payloads {
		typ, data, err := EncodePayload(p)
		if err != nil {
			return Result{}, "", err
		}
		evs[i] = NewEvent{ID: EventID(meta.CommandID, i), Type: typ, Data: data,
			OccurredAt: occurredAt(p, now), RecordedAt: now, Actor: meta.Actor,
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID}
	}
	expected, first := NoStream(), uint64(0)
	if e.has {
		expected, first = Exact(e.rev), e.rev+1
	}
	ar, err := s.store.Append(ctx, e.stream, expected, evs)
	if err != nil {
		e.synced = false // the append may or may not have landed
		if errors.Is(err, ErrConflict) {
			return Result{}, "", err
		}
		return Result{}, "", fmt.Errorf("%s: append to %s: %w", cmd.CommandName(), e.stream, err)
	}
	if ar.Revision != first+uint64(len(evs))-1 {
		// The store recognised these ids from an earlier execution that this
		// cache has not seen: read what is stored.
		if err := s.catchUp(ctx, e); err != nil {
			return Result{}, "", err
		}
		if rev, ok := e.seen(evs[0].ID); ok {
			return s.readBack(ctx, e.stream, rev, meta.CommandID)
		}
		return Result{}, "", fmt.Errorf("%s: store returned revision %d, want %d", e.stream, ar.Revision, first+uint64(len(evs))-1)
	}
	res := Result{Stream: e.stream, Revision: ar.Revision, Position: ar.Position, Events: make([]Event, len(evs))}
	forgotten := ""
	for i, ne := range evs {
		rev := first + uint64(i)
		e.state.Apply(payloads[i], ne.OccurredAt)
		e.has, e.rev = true, rev
		e.remember(ne.ID, rev)
		res.Events[i] = Event{ID: ne.ID, Type: ne.Type, Stream: e.stream, Revision: rev, Data: ne.Data,
			OccurredAt: ne.OccurredAt, RecordedAt: ne.RecordedAt, Actor: ne.Actor,
			CorrelationID: ne.CorrelationID, CausationID: ne.CausationID}
		if mf, ok := payloads[i].(*MemberForgotten); ok {
			forgotten = mf.MemberID
		}
	}
	res.Events[len(evs)-1].Position = ar.Position
	return res, forgotten, nil
}

// readBack returns the stored result of an earlier execution of commandID
// whose first event is at revision rev.
func (s *Service) readBack(ctx context.Context, stream string, rev uint64, commandID string) (Result, string, error) {
	res := Result{Stream: stream}
	forgotten := ""
	for ev, err := range s.store.ReadStream(ctx, stream, rev) {
		if err != nil {
			return Result{}, "", fmt.Errorf("read back %s: %w", stream, err)
		}
		if ev.ID != EventID(commandID, len(res.Events)) {
			break
		}
		res.Events = append(res.Events, ev)
		res.Revision, res.Position = ev.Revision, ev.Position
		if ev.Type == TypeMemberForgotten {
			if p, err := DecodePayload(ev.Type, ev.Data); err == nil {
				forgotten = p.(*MemberForgotten).MemberID
			}
		}
	}
	if len(res.Events) == 0 {
		return Result{}, "", fmt.Errorf("read back %s: command %q not found at revision %d", stream, commandID, rev)
	}
	return res, forgotten, nil
}

// occurredAt is the business time of an event: its own time or date when it
// has one, else now.
func occurredAt(p Payload, now time.Time) time.Time {
	date := ""
	switch e := p.(type) {
	case *ActivityLogged:
		return e.OccurredAt.UTC()
	case *SaleClosed:
		return e.OccurredAt.UTC()
	case *MeetingHeld:
		return e.HeldAt.UTC()
	case *MemberJoined:
		date = e.JoinedOn
	case *MemberTransferred:
		date = e.EffectiveOn
	case *MemberLeft:
		date = e.LeftOn
	case *PromotionEffected:
		date = e.EffectiveOn
	}
	if date != "" {
		if t, err := ParseDate(date); err == nil {
			return t
		}
	}
	return now
}

// facts loads the snapshots a command needs.
func (s *Service) facts(ctx context.Context, r refs, now time.Time) (Facts, error) {
	f := Facts{Now: now}
	if r.org {
		if err := s.view(ctx, OrgStream(), func(st State) { f.Org = *st.(*OrgState) }); err != nil {
			return f, err
		}
	}
	for _, id := range r.members {
		if requireID("member", id) != nil {
			continue
		}
		if f.Members == nil {
			f.Members = make(map[string]MemberFacts, len(r.members))
		}
		if _, done := f.Members[id]; done {
			continue
		}
		if err := s.view(ctx, MemberStream(id), func(st State) { f.Members[id] = st.(*MemberState).Facts() }); err != nil {
			return f, err
		}
	}
	for _, id := range r.teams {
		if requireID("team", id) != nil {
			continue
		}
		if f.Teams == nil {
			f.Teams = make(map[string]TeamFacts, len(r.teams))
		}
		if err := s.view(ctx, TeamStream(id), func(st State) { f.Teams[id] = st.(*TeamState).Facts() }); err != nil {
			return f, err
		}
	}
	for _, id := range r.promotions {
		if requireID("promotion", id) != nil {
			continue
		}
		if f.Promotions == nil {
			f.Promotions = make(map[string]PromotionState, len(r.promotions))
		}
		if err := s.view(ctx, PromotionStream(id), func(st State) { f.Promotions[id] = *st.(*PromotionState) }); err != nil {
			return f, err
		}
	}
	return f, nil
}

// view runs fn on the caught-up state of stream, under its lock. fn must
// copy what it keeps.
func (s *Service) view(ctx context.Context, stream string, fn func(State)) error {
	e := s.cache.get(stream)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.synced || time.Since(e.checked) > s.factsTTL {
		if err := s.catchUp(ctx, e); err != nil {
			return err
		}
	}
	fn(e.state)
	return nil
}

// catchUp applies the events stored after e's revision. e is locked.
func (s *Service) catchUp(ctx context.Context, e *entry) error {
	from := uint64(0)
	if e.has {
		from = e.rev + 1
	}
	for ev, err := range s.store.ReadStream(ctx, e.stream, from) {
		if err != nil {
			return fmt.Errorf("load %s: %w", e.stream, err)
		}
		p, err := DecodePayload(ev.Type, ev.Data)
		if err != nil {
			return fmt.Errorf("load %s revision %d: %w", e.stream, ev.Revision, err)
		}
		e.state.Apply(p, ev.OccurredAt)
		e.has, e.rev = true, ev.Revision
		// A store may hand out ids that share memory with the rest of what
		// it read (the embedded store's page of events): a copy keeps the
		// cached entry from holding that whole page.
		e.remember(strings.Clone(ev.ID), ev.Revision)
	}
	e.synced, e.checked = true, time.Now()
	return nil
}

// Member returns the facts of a member (ErrNotFound if they never joined).
func (s *Service) Member(ctx context.Context, id string) (MemberFacts, error) {
	var m MemberFacts
	if err := requireID("member_id", id); err != nil {
		return m, err
	}
	if err := s.view(ctx, MemberStream(id), func(st State) { m = st.(*MemberState).Facts() }); err != nil {
		return m, err
	}
	if !m.Joined {
		return m, notFoundf("member %q does not exist", id)
	}
	return m, nil
}

// Team returns the facts of a team (ErrNotFound if it was never formed).
func (s *Service) Team(ctx context.Context, id string) (TeamFacts, error) {
	var t TeamFacts
	if err := requireID("team_id", id); err != nil {
		return t, err
	}
	if err := s.view(ctx, TeamStream(id), func(st State) { t = st.(*TeamState).Facts() }); err != nil {
		return t, err
	}
	if !t.Formed {
		return t, notFoundf("team %q does not exist", id)
	}
	return t, nil
}

// Promotion returns the state of a promotion (ErrNotFound if never
// nominated). Whether it was effected or rescinded is in the member's
// stream.
func (s *Service) Promotion(ctx context.Context, id string) (PromotionState, error) {
	var p PromotionState
	if err := requireID("promotion_id", id); err != nil {
		return p, err
	}
	if err := s.view(ctx, PromotionStream(id), func(st State) { p = *st.(*PromotionState) }); err != nil {
		return p, err
	}
	if !p.Nominated {
		return p, notFoundf("promotion %q does not exist", id)
	}
	return p, nil
}

// Suggestion returns the state of a suggestion (ErrNotFound if never
// submitted).
func (s *Service) Suggestion(ctx context.Context, id string) (SuggestionState, error) {
	var v SuggestionState
	if err := requireID("suggestion_id", id); err != nil {
		return v, err
	}
	if err := s.view(ctx, SuggestionStream(id), func(st State) { v = *st.(*SuggestionState) }); err != nil {
		return v, err
	}
	if !v.Submitted {
		return v, notFoundf("suggestion %q does not exist", id)
	}
	return v, nil
}

// Target returns the state of a target (ErrNotFound if never set).
func (s *Service) Target(ctx context.Context, id string) (TargetState, error) {
	var v TargetState
	if err := requireID("target_id", id); err != nil {
		return v, err
	}
	if err := s.view(ctx, TargetStream(id), func(st State) { v = *st.(*TargetState) }); err != nil {
		return v, err
	}
	if !v.Set {
		return v, notFoundf("target %q does not exist", id)
	}
	return v, nil
}

// Org returns the ladder and the rule set in force.
func (s *Service) Org(ctx context.Context) (OrgState, error) {
	var o OrgState
	err := s.view(ctx, OrgStream(), func(st State) { o = *st.(*OrgState) })
	return o, err
}

// ---- cache ---------------------------------------------------------------------

const recentIDs = 32

// entry is one stream's cached decided state. mu serialises catch-up,
// decisions and appends on the stream within this Service.
type entry struct {
	mu     sync.Mutex
	stream string
	state  State
	has    bool   // the stream has at least one event
	rev    uint64 // last applied revision (when has)
	// synced: state reflects every event this Service knows of (set by a
	// catch-up, kept by this Service's own appends, cleared by a failed
	// append). checked: when the store was last read for it.
	synced  bool
	checked time.Time
	recent  [recentIDs]recentEvent
	next    int
}

type recentEvent struct {
	id  string
	rev uint64
}

func (e *entry) remember(id string, rev uint64) {
	e.recent[e.next] = recentEvent{id: id, rev: rev}
	e.next = (e.next + 1) % recentIDs
}

func (e *entry) seen(id string) (uint64, bool) {
	for _, r := range e.recent {
		if r.id == id {
			return r.rev, true
		}
	}
	return 0, false
}

// stateCache is a bounded LRU of entries.
type stateCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[string]*list.Element
}

func (c *stateCache) get(stream string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[stream]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{stream: stream, state: NewState(stream)}
	c.m[stream] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry).stream)
	}
	return e
}

// usedIDs remembers which stream recent command ids wrote to, so that a
// command id reused for another command is refused instead of producing
// events with duplicate ids.
const usedIDsKept = 1 << 16

type usedIDs struct {
	mu   sync.Mutex
	m    map[string]string
	ring []string
	next int
}

func (u *usedIDs) stream(id string) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.m[id]
	return s, ok
}

func (u *usedIDs) add(id, stream string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.m[id]; ok {
		return
	}
	if old := u.ring[u.next]; old != "" {
		delete(u.m, old)
	}
	u.ring[u.next] = id
	u.next = (u.next + 1) % len(u.ring)
	u.m[id] = stream
}

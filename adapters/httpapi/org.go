package httpapi

import (
	"context"
	"fmt"
	"iter"
	"sync"

	"perfledger/domain"
)

// StreamReader reads one stream; domain.EventStore implements it.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[domain.Event, error]
}

// StoreOrg implements Org from the event store itself, so that the role
// rules see a member or team the moment its event is stored (the read models
// may lag). It folds only the organisation events (MemberJoined,
// MemberTransferred, TeamFormed) and caches each stream's result with its
// revision, catching up from there on the next question; a member stream of
// 100,000 activities is read once, not per request. Safe for concurrent use.
type StoreOrg struct {
	r       StreamReader
	mu      sync.Mutex
	streams map[string]*orgEntry
}

var _ Org = (*StoreOrg)(nil)

type orgEntry struct {
	mu     sync.Mutex
	next   uint64 // first revision not folded yet
	exists bool
	team   string // member: current team; team: parent team
}

// NewStoreOrg returns an Org reading r.
func NewStoreOrg(r StreamReader) *StoreOrg {
	return &StoreOrg{r: r, streams: make(map[string]*orgEntry)}
}

// maxOrgEntries bounds the cache; past it the cache starts over.
const maxOrgEntries = 100_000

func (o *StoreOrg) fold(ctx context.Context, stream string) (exists bool, team string, err error) {
	o.mu.Lock()
	e, ok := o.streams[stream]
	if !ok {
		if len(o.streams) >= maxOrgEntries {
			clear(o.streams)
		}
		e = &orgEntry{}
		o.streams[stream] = e
	}
	o.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	for ev, err := range o.r.ReadStream(ctx, stream, e.next) {
		if err != nil {
			return false, "", err
		}
		e.next = ev.Revision + 1
		switch ev.Type {
		case domain.TypeMemberJoined, domain.TypeMemberTransferred, domain.TypeTeamFormed:
		default:
			continue
		}
		p, err := domain.DecodePayload(ev.Type, ev.Data)
		if err != nil {
			return false, "", fmt.Errorf("org: %s revision %d: %w", stream, ev.Revision, err)
		}
		switch x := p.(type) {
		case *domain.MemberJoined:
			e.exists, e.team = true, x.TeamID
		case *domain.MemberTransferred:
			e.team = x.ToTeamID
		case *domain.TeamFormed:
			e.exists, e.team = true, x.ParentTeamID
		}
	}
	return e.exists, e.team, nil
}

// MemberTeam implements Org.
func (o *StoreOrg) MemberTeam(ctx context.Context, memberID string) (string, error) {
	ok, team, err := o.fold(ctx, domain.MemberStream(memberID))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: member %q does not exist", domain.ErrNotFound, memberID)
	}
	return team, nil
}

// TeamWithin implements Org: it walks up from team through the parents.
func (o *StoreOrg) TeamWithin(ctx context.Context, team, root string) (bool, error) {
	seen := map[string]bool{}
	for cur := team; cur != "" && !seen[cur]; {
		if cur == root {
			return true, nil
		}
		seen[cur] = true
		ok, parent, err := o.fold(ctx, domain.TeamStream(cur))
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
		cur = parent
	}
	return false, nil
}

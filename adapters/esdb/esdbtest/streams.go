package esdbtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// streamsService implements event_store.client.streams.Streams.
type streamsService struct {
	api.UnimplementedStreamsServer
	s *Server
}

// expectation is an expected stream revision of an append or delete.
type expectation struct {
	kind byte // 'a' any, 'n' no stream, 'e' stream exists, 'r' revision
	rev  uint64
}

func (e expectation) String() string {
	switch e.kind {
	case 'n':
		return "no stream"
	case 'e':
		return "stream exists"
	case 'r':
		return strconv.FormatUint(e.rev, 10)
	}
	return "any"
}

// Append implements the client-streaming append: one options message, then
// the proposed events.
func (ss *streamsService) Append(stream api.Streams_AppendServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "append: the first message must be the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "append: empty stream name")
	}
	var exp expectation
	switch o := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		exp = expectation{kind: 'r', rev: o.Revision}
	case *api.AppendReq_Options_NoStream:
		exp.kind = 'n'
	case *api.AppendReq_Options_StreamExists:
		exp.kind = 'e'
	default:
		exp.kind = 'a'
	}
	var evs []proposed
	size := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "append: expected a proposed message")
		}
		id, err := fromProtoUUID(m.GetId())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "append: event id: %v", err)
		}
		typ := m.GetMetadata()["type"]
		if typ == "" {
			return status.Error(codes.InvalidArgument, "append: event without type")
		}
		ct := m.GetMetadata()["content-type"]
		if ct == "" {
			ct = "application/octet-stream"
		}
		evs = append(evs, proposed{id: id, typ: typ, contentType: ct, data: m.GetData(), meta: m.GetCustomMetadata()})
		size += len(m.GetData()) + len(m.GetCustomMetadata()) + 2*len(typ)
		if size > ss.s.cfg.MaxAppendSize {
			stream.SetTrailer(metadata.Pairs(
				"exception", "maximum-append-size-exceeded",
				"maximum-append-size", strconv.Itoa(ss.s.cfg.MaxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", ss.s.cfg.MaxAppendSize)
		}
	}
	resp, err := ss.s.append(name, exp, evs)
	if err != nil {
		var se *streamDeletedError
		if errors.As(err, &se) {
			stream.SetTrailer(se.trailer())
		}
		return err
	}
	return stream.SendAndClose(resp)
}

type streamDeletedError struct{ stream string }

func (e *streamDeletedError) Error() string {
	return fmt.Sprintf("Event stream '%s' is deleted.", e.stream)
}
func (e *streamDeletedError) GRPCStatus() *status.Status {
	return status.New(codes.FailedPrecondition, e.Error())
}
func (e *streamDeletedError) trailer() metadata.MD {
	return metadata.Pairs("exception", "stream-deleted", "stream-name", e.stream)
}

// append checks exp and writes evs, or recognises an idempotent retry.
func (s *Server) append(name string, exp expectation, evs []proposed) (*api.AppendResp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st != nil && st.tombstoned {
		return nil, &streamDeletedError{stream: name}
	}
	last, hasLast := st.last()
	exists := st.exists()
	ids := make([][16]byte, len(evs))
	for i, e := range evs {
		ids[i] = e.id
	}

	// Idempotency: the same ids already stored where this append would
	// have put them.
	var base uint64
	known := false
	switch exp.kind {
	case 'r':
		base, known = exp.rev+1, true
	case 'n':
		base, known = 0, true
		if hasLast && !exists { // soft-deleted: numbering continues
			base = last + 1
		}
	case 'a', 'e':
		if st != nil && len(evs) > 0 {
			if rev, ok := st.ids[evs[0].id]; ok {
				base, known = uint64(rev), true
			}
		}
	}
	if known && len(evs) > 0 && hasLast && base <= last && base+uint64(len(evs))-1 <= last {
		if sameIDs(st.recs[base:base+uint64(len(evs))], ids) {
			// Like EventStoreDB before 23.10: the revision, but no position.
			return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: base + uint64(len(evs)) - 1},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}}, nil
		}
	}

	ok := false
	switch exp.kind {
	case 'a':
		ok = true
	case 'n':
		ok = !exists
	case 'e':
		ok = exists
	case 'r':
		ok = hasLast && last == exp.rev
	}
	if !ok {
		return wrongExpected(exp, last, exists || hasLast), nil
	}
	if len(evs) == 0 {
		r := &api.AppendResp_Success{}
		if hasLast {
			r.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: last}
		} else {
			r.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		}
		r.PositionOption = &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: r}}, nil
	}
	if st == nil {
		st = s.stream(name)
	}
	recs := s.writeLocked(st, name, evs)
	return success(recs[len(recs)-1]), nil
}

func success(last *record) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.rev},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: last.commit, PreparePosition: last.prepare,
		}},
	}}}
}

func wrongExpected(exp expectation, last uint64, hasStream bool) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if hasStream {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: last}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: last}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	}
	switch exp.kind {
	case 'r':
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: exp.rev}
	case 'n':
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case 'e':
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// Delete soft-deletes a stream: its events are hidden from stream reads
// (they stay in $all) and a $metadata event is written to $$stream.
func (ss *streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	var exp expectation
	switch o := req.GetOptions().GetExpectedStreamRevision().(type) {
	case *api.DeleteReq_Options_Revision:
		exp = expectation{kind: 'r', rev: o.Revision}
	case *api.DeleteReq_Options_NoStream:
		exp.kind = 'n'
	case *api.DeleteReq_Options_StreamExists:
		exp.kind = 'e'
	default:
		exp.kind = 'a'
	}
	r, err := ss.s.remove(ctx, name, exp, false)
	if err != nil {
		return nil, err
	}
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: r.commit, PreparePosition: r.prepare,
	}}}, nil
}

// Tombstone deletes a stream for good: reads and appends then fail with the
// stream-deleted exception.
func (ss *streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	var exp expectation
	switch o := req.GetOptions().GetExpectedStreamRevision().(type) {
	case *api.TombstoneReq_Options_Revision:
		exp = expectation{kind: 'r', rev: o.Revision}
	case *api.TombstoneReq_Options_NoStream:
		exp.kind = 'n'
	case *api.TombstoneReq_Options_StreamExists:
		exp.kind = 'e'
	default:
		exp.kind = 'a'
	}
	r, err := ss.s.remove(ctx, name, exp, true)
	if err != nil {
		return nil, err
	}
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: r.commit, PreparePosition: r.prepare,
	}}}, nil
}

func (s *Server) remove(ctx context.Context, name string, exp expectation, tombstone bool) (*record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st != nil && st.tombstoned {
		err := &streamDeletedError{stream: name}
		_ = grpc.SetTrailer(ctx, err.trailer())
		return nil, err
	}
	last, hasLast := st.last()
	exists := st.exists()
	ok := false
	switch exp.kind {
	case 'a':
		ok = true
	case 'n':
		ok = !exists
	case 'e':
		ok = exists
	case 'r':
		ok = hasLast && last == exp.rev
	}
	if !ok {
		actual := "-1"
		if hasLast {
			actual = strconv.FormatUint(last, 10)
		}
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "wrong-expected-version",
			"expected-version", exp.String(), "actual-version", actual))
		return nil, status.Errorf(codes.FailedPrecondition, "Wrong expected version: expected %s, actual %s", exp, actual)
	}
	if st == nil {
		st = s.stream(name)
	}
	metaName := "$$" + name
	var id [16]byte
	u := uuid.New()
	copy(id[:], u[:])
	if tombstone {
		st.tombstoned = true
		recs := s.writeLocked(st, name, []proposed{{id: id, typ: "$streamDeleted", contentType: "application/json", data: []byte(`{}`)}})
		return recs[0], nil
	}
	tb := uint64(len(st.recs))
	st.truncateBefore = tb
	data := fmt.Appendf(nil, `{"$tb":%d}`, tb)
	recs := s.writeLocked(s.stream(metaName), metaName, []proposed{{id: id, typ: "$metadata", contentType: "application/json", data: data}})
	return recs[0], nil
}

// readRequest is a decoded ReadReq.
type readRequest struct {
	all       bool
	stream    string
	backwards bool
	count     uint64
	subscribe bool
	filter    *filter
	window    uint64 // checkpoint every window events scanned (filtered $all subscriptions)
	stringIDs bool

	// where to start
	fromStart, fromEnd bool
	fromRev            uint64
	fromPos            pos
}

func decodeRead(req *api.ReadReq) (*readRequest, error) {
	o := req.GetOptions()
	if o == nil {
		return nil, status.Error(codes.InvalidArgument, "read: no options")
	}
	r := &readRequest{backwards: o.GetReadDirection() == api.ReadReq_Options_Backwards}
	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		r.stream = string(so.Stream.GetStreamIdentifier().GetStreamName())
		if r.stream == "" {
			return nil, status.Error(codes.InvalidArgument, "read: empty stream name")
		}
		switch ro := so.Stream.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			r.fromRev = ro.Revision
		case *api.ReadReq_Options_StreamOptions_End:
			r.fromEnd = true
		default:
			r.fromStart = true
		}
	case *api.ReadReq_Options_All:
		r.all = true
		switch ao := so.All.GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Position:
			r.fromPos = pos{ao.Position.GetCommitPosition(), ao.Position.GetPreparePosition()}
		case *api.ReadReq_Options_AllOptions_End:
			r.fromEnd = true
		default:
			r.fromStart = true
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "read: no stream option")
	}
	switch co := o.GetCountOption().(type) {
	case *api.ReadReq_Options_Count:
		r.count = co.Count
	case *api.ReadReq_Options_Subscription:
		r.subscribe = true
		if r.backwards {
			return nil, status.Error(codes.InvalidArgument, "read: subscriptions go forwards")
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "read: no count option")
	}
	if fo, ok := o.GetFilterOption().(*api.ReadReq_Options_Filter); ok && fo.Filter != nil {
		if !r.all {
			return nil, status.Error(codes.InvalidArgument, "read: filters apply to $all only")
		}
		f := &filter{}
		var expr *api.ReadReq_Options_FilterOptions_Expression
		switch fe := fo.Filter.GetFilter().(type) {
		case *api.ReadReq_Options_FilterOptions_EventType:
			f.onType, expr = true, fe.EventType
		case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
			expr = fe.StreamIdentifier
		default:
			return nil, status.Error(codes.InvalidArgument, "read: filter without expression")
		}
		if expr.GetRegex() != "" {
			re, err := regexp.Compile(expr.GetRegex())
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "read: filter regex: %v", err)
			}
			f.re = re
		} else {
			f.prefixes = expr.GetPrefix()
		}
		r.filter = f
		window := uint64(32)
		if m, ok := fo.Filter.GetWindow().(*api.ReadReq_Options_FilterOptions_Max); ok && m.Max > 0 {
			window = uint64(m.Max)
		}
		mult := uint64(fo.Filter.GetCheckpointIntervalMultiplier())
		if mult == 0 {
			mult = 1
		}
		r.window = window * mult
	}
	_, r.stringIDs = o.GetUuidOption().GetContent().(*api.ReadReq_Options_UUIDOption_String_)
	return r, nil
}

// Read serves reads of a stream or of $all, and catch-up subscriptions.
// A plain read answers only events or stream-not-found: the client panics on
// anything else.
func (ss *streamsService) Read(req *api.ReadReq, stream api.Streams_ReadServer) error {
	r, err := decodeRead(req)
	if err != nil {
		return err
	}
	if r.subscribe {
		return ss.s.subscribe(r, stream)
	}
	recs, notFound, err := ss.s.read(r)
	if err != nil {
		var se *streamDeletedError
		if errors.As(err, &se) {
			stream.SetTrailer(se.trailer())
		}
		return err
	}
	if notFound {
		return stream.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
		}}})
	}
	for _, rec := range recs {
		if err := stream.Send(eventResp(rec, r.stringIDs)); err != nil {
			return err
		}
	}
	return nil
}

// read returns the records a plain read answers (at most count).
func (s *Server) read(r *readRequest) (recs []*record, notFound bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	take := func(src []*record, start, step int) {
		for i := start; i >= 0 && i < len(src) && uint64(len(recs)) < r.count; i += step {
			if r.filter.match(src[i]) {
				recs = append(recs, src[i])
			}
		}
	}
	if r.all {
		var start int
		switch {
		case r.fromStart && !r.backwards:
			start = 0
		case r.fromStart:
			start = -1
		case r.fromEnd && r.backwards:
			start = len(s.log) - 1
		case r.fromEnd:
			start = len(s.log)
		case r.backwards:
			start = searchAll(s.log, r.fromPos) - 1
		default:
			start = searchAll(s.log, r.fromPos)
		}
		if r.backwards {
			take(s.log, start, -1)
		} else {
			take(s.log, start, 1)
		}
		return recs, false, nil
	}
	st := s.streams[r.stream]
	if st != nil && st.tombstoned {
		return nil, false, &streamDeletedError{stream: r.stream}
	}
	vis := st.visible()
	if len(vis) == 0 {
		return nil, true, nil
	}
	first := vis[0].rev
	idx := func(rev uint64) int {
		if rev < first {
			return -1
		}
		return int(rev - first)
	}
	var start int
	switch {
	case r.fromStart && !r.backwards:
		start = 0
	case r.fromStart:
		start = -1
	case r.fromEnd && r.backwards:
		start = len(vis) - 1
	case r.fromEnd:
		start = len(vis)
	case r.backwards:
		start = min(idx(r.fromRev), len(vis)-1)
	default:
		start = max(idx(r.fromRev), 0)
		if r.fromRev < first {
			start = 0
		}
	}
	if r.backwards {
		take(vis, start, -1)
	} else {
		take(vis, start, 1)
	}
	return recs, false, nil
}

// subscribe serves a catch-up subscription: confirmation, the events after
// the start point, caught-up, then live events; filtered $all subscriptions
// also get checkpoints while scanning.
func (s *Server) subscribe(r *readRequest, stream api.Streams_ReadServer) error {
	ctx := stream.Context()
	id := uuid.NewString()
	s.subCount.Add(1)
	if err := stream.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: id}}}); err != nil {
		return err
	}
	dropAfter := s.dropAfter.Load()

	// cursor: index into s.log ($all) or into the stream's records.
	s.mu.Lock()
	drop := s.drop
	var cursor int
	if r.all {
		switch {
		case r.fromStart:
			cursor = 0
		case r.fromEnd:
			cursor = len(s.log)
		default: // strictly after the position
			cursor = searchAll(s.log, r.fromPos)
			if cursor < len(s.log) && s.log[cursor].pos() == r.fromPos {
				cursor++
			}
		}
	} else {
		st := s.streams[r.stream]
		switch {
		case st != nil && st.tombstoned:
			s.mu.Unlock()
			err := &streamDeletedError{stream: r.stream}
			stream.SetTrailer(err.trailer())
			return err
		case r.fromStart:
			cursor = 0
			if st != nil {
				cursor = int(st.truncateBefore)
			}
		case r.fromEnd:
			if st != nil {
				cursor = len(st.recs)
			}
		default:
			cursor = int(r.fromRev) + 1
		}
	}
	s.mu.Unlock()

	var sent, scanned int64
	caughtUp := false
	const batch = 256
	buf := make([]*record, 0, batch)
	for {
		s.mu.Lock()
		buf = buf[:0]
		var src []*record
		if r.all {
			src = s.log
		} else if st := s.streams[r.stream]; st != nil {
			src = st.recs
		}
		if cursor < len(src) {
			buf = append(buf, src[cursor:min(len(src), cursor+batch)]...)
			cursor += len(buf)
		}
		changed := s.changed
		s.mu.Unlock()

		for _, rec := range buf {
			scanned++
			if r.filter.match(rec) {
				if dropAfter > 0 && sent >= dropAfter {
					return status.Error(codes.Unavailable, "esdbtest: subscription dropped (fault injected)")
				}
				if err := stream.Send(eventResp(rec, r.stringIDs)); err != nil {
					return err
				}
				sent++
			}
			if r.window > 0 && uint64(scanned)%r.window == 0 {
				if err := stream.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
					CommitPosition: rec.commit, PreparePosition: rec.prepare,
				}}}); err != nil {
					return err
				}
			}
		}
		if len(buf) > 0 {
			select {
			case <-drop:
				return status.Error(codes.Unavailable, "esdbtest: subscription dropped (fault injected)")
			default:
			}
			continue
		}
		if !caughtUp {
			caughtUp = true
			if err := stream.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-drop:
			return status.Error(codes.Unavailable, "esdbtest: subscription dropped (fault injected)")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// eventResp renders a record the way EventStoreDB does, with the "type",
// "content-type" and "created" (decimal .NET ticks) system metadata.
func eventResp(r *record, stringIDs bool) *api.ReadResp {
	if !stringIDs && r.resp != nil {
		return r.resp
	}
	return newEventResp(r, stringIDs)
}

func newEventResp(r *record, stringIDs bool) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toProtoUUID(r.id, stringIDs),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.rev,
			PreparePosition:  r.prepare,
			CommitPosition:   r.commit,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.contentType,
				"created":      strconv.FormatInt(r.created, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.commit},
	}}}
}

func toProtoUUID(id [16]byte, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: uuid.UUID(id).String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func fromProtoUUID(u *shared.UUID) ([16]byte, error) {
	var id [16]byte
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		binary.BigEndian.PutUint64(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, nil
	case *shared.UUID_String_:
		p, err := uuid.Parse(strings.TrimSpace(v.String_))
		if err != nil {
			return id, err
		}
		return p, nil
	}
	return id, errors.New("missing")
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"perfledger/domain"
)

// eventLine is one event as a JSON line: the full envelope and the payload.
// `ledger events` and `ledger export` write it; `ledger import` reads it.
// Personal data stays ciphertext, exactly as stored.
type eventLine struct {
	Position      string          `json:"position"`
	Stream        string          `json:"stream"`
	Revision      uint64          `json:"revision"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	OccurredAt    time.Time       `json:"occurred_at"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Actor         string          `json:"actor,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
	Data          json.RawMessage `json:"data"`
}

func toLine(e domain.Event) eventLine {
	data := json.RawMessage(e.Data)
	if !json.Valid(data) { // never produce an unreadable line
		b, _ := json.Marshal(string(e.Data))
		data = b
	}
	return eventLine{
		Position: e.Position.String(), Stream: e.Stream, Revision: e.Revision, ID: e.ID, Type: e.Type,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Actor: e.Actor,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		PrevHash: e.PrevHash, Hash: e.Hash, Data: data,
	}
}

// event is the line as a stored event (its position is not kept).
func (l eventLine) event() domain.Event {
	return domain.Event{ID: l.ID, Type: l.Type, Stream: l.Stream, Revision: l.Revision, Data: l.Data,
		OccurredAt: l.OccurredAt, RecordedAt: l.RecordedAt, Actor: l.Actor,
		CorrelationID: l.CorrelationID, CausationID: l.CausationID, PrevHash: l.PrevHash, Hash: l.Hash}
}

// copyEvent appends e to dst at the revision it has in its own log, keeping
// its id, type, times, actor and causal ids, so that dst computes the same
// hash. Used by import and migrate; the expected revision makes a repeat a
// no-op (or a conflict), never a duplicate.
func copyEvent(ctx context.Context, dst domain.EventStore, e domain.Event) error {
	exp := domain.NoStream()
	if e.Revision > 0 {
		exp = domain.Exact(e.Revision - 1)
	}
	_, err := dst.Append(ctx, e.Stream, exp, []domain.NewEvent{{ID: e.ID, Type: e.Type, Data: e.Data,
		OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Actor: e.Actor,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID}})
	return err
}

func runEvents(ctx context.Context, env *environment, args []string) error {
	var (
		c      dataConfig
		stream string
		typ    string
		from   string
		limit  int
	)
	fs := newFlags(env, "events", "events [--data DIR] [--stream S] [--type T] [--from POS] [--limit N]\n\nPrints the event log in global order as JSON lines (full envelope and payload).")
	addDataFlags(fs, env, &c)
	addStoreFlag(fs, env, &c)
	fs.StringVar(&stream, "stream", "", "only this stream (e.g. member-<id>)")
	fs.StringVar(&typ, "type", "", "only this stored type (e.g. ActivityLogged.v1)")
	fs.StringVar(&from, "from", "", "start at this global position (inclusive)")
	fs.IntVar(&limit, "limit", 0, "stop after N events (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if limit < 0 {
		return usageErr("--limit must be ≥ 0")
	}
	var fromPos domain.Position
	if from != "" {
		p, err := domain.ParsePosition(from)
		if err != nil {
			return usageErr("--from: %v", err)
		}
		fromPos = p
	}
	store, err := openExisting(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()

	w := bufio.NewWriterSize(env.stdout, 64<<10)
	enc := json.NewEncoder(w)
	n := 0
	var seq func(yield func(domain.Event, error) bool)
	if stream != "" {
		var fromRev uint64
		seq = store.ReadStream(ctx, stream, fromRev)
	} else {
		seq = store.ReadAll(ctx, domain.Position{})
	}
	for e, err := range seq {
		if err != nil {
			return err
		}
		if e.Position.Less(fromPos) || (typ != "" && e.Type != typ) {
			continue
		}
		if err := enc.Encode(toLine(e)); err != nil {
			return err
		}
		n++
		if limit > 0 && n >= limit {
			break
		}
	}
	return w.Flush()
}

// openExisting opens the configured store, refusing to create an empty
// embedded ledger where one was meant to be read.
func openExisting(ctx context.Context, c dataConfig) (closingStore, error) {
	if err := mustExist(c); err != nil {
		return nil, err
	}
	return openStore(ctx, c)
}

// mustExist refuses to create an empty ledger where one was meant to be read.
func mustExist(c dataConfig) error {
	if c.Store != "" && c.Store != "sqlite" {
		return nil
	}
	if _, err := os.Stat(c.eventsPath()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no ledger in %s (run `ledger demo` or `ledger serve` first, or pass --data)", c.Dir)
		}
		return err
	}
	return nil
}

func runExport(ctx context.Context, env *environment, args []string) error {
	var c dataConfig
	var out string
	fs := newFlags(env, "export", "export [--data DIR] [--out FILE]\n\nWrites the whole event log, in global order, as JSON lines with the full envelope.\nPersonal data stays encrypted. `ledger import` reads the file back.")
	addDataFlags(fs, env, &c)
	addStoreFlag(fs, env, &c)
	fs.StringVar(&out, "out", "-", "output file, - for standard output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	store, err := openExisting(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()
	var w io.Writer = env.stdout
	var f *os.File
	if out != "-" {
		if f, err = os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		w = f
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	var d domain.Digest
	var last domain.Position
	for e, err := range store.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			return err
		}
		if err := enc.Encode(toLine(e)); err != nil {
			return err
		}
		if err := d.Add(e.Hash); err != nil {
			return err
		}
		last = e.Position
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stderr, "exported %d events; digest %s at position %s\n", d.Count(), d.Root(), last)
	return nil
}

func runImport(ctx context.Context, env *environment, args []string) error {
	var c dataConfig
	var in string
	fs := newFlags(env, "import", "import --in FILE [--data DIR]\n\nLoads an export into an EMPTY data folder, keeping ids, times and order, and checks\nthat every event gets the same hash it had (so the digest is the same too).")
	addDataFlags(fs, env, &c)
	fs.StringVar(&in, "in", "", "export file to read, - for standard input (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if in == "" {
		return usageErr("--in is required")
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := os.Stat(c.eventsPath()); err == nil {
		return fmt.Errorf("import: %s already holds a ledger; import only into an empty data folder", c.Dir)
	}
	var r io.Reader = os.Stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		r = f
	}
	c.Relaxed = true // synced once at Close
	store, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	n, digest, err := importLines(ctx, r, store)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "imported %d events; digest %s\n", n, digest)
	return nil
}

// importLines appends every line of r in order, each with the revision it had,
// and checks that the store computed the same hash. It returns the count and
// the digest of the imported log.
func importLines(ctx context.Context, r io.Reader, store domain.EventStore) (uint64, string, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 256<<10))
	var d domain.Digest
	line := 0
	for {
		var l eventLine
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return d.Count(), "", fmt.Errorf("import: event %d: %w", line, err)
		}
		if err := copyEvent(ctx, store, l.event()); err != nil {
			return d.Count(), "", fmt.Errorf("import: event %d (%s rev %d): %w", line, l.Stream, l.Revision, err)
		}
		var got string
		for e, err := range store.ReadStream(ctx, l.Stream, l.Revision) {
			if err != nil {
				return d.Count(), "", err
			}
			got = e.Hash
			break
		}
		if got != l.Hash {
			return d.Count(), "", fmt.Errorf("import: event %d (%s rev %d): hash %s differs from the exported %s: the export was altered", line, l.Stream, l.Revision, got, l.Hash)
		}
		if err := d.Add(got); err != nil {
			return d.Count(), "", err
		}
	}
	return d.Count(), d.Root(), nil
}

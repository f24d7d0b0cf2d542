package httpapi

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"perfledger/domain"
)

// idempotency remembers, per Idempotency-Key, who sent it, a hash of what was
// sent (method, route and body) and the successful response, in the table
// `api_idempotency` of a SQL database.
//
// Only successful responses are stored: a refused request appended nothing,
// so sending it again with the same key simply runs it again. Two requests
// racing with the same key both reach the command service with the same
// command id, which appends once (event ids derive from the command id); the
// first stored response wins and both clients get it.
type idempotency struct {
	db    *sql.DB
	clock domain.Clock
}

type storedResponse struct {
	Principal   string
	BodyHash    [32]byte
	Status      int
	ContentType string
	Body        []byte
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in bytes.
const MaxIdempotencyKey = 200

func newIdempotency(ctx context.Context, db *sql.DB, clock domain.Clock) (*idempotency, error) {
	const schema = `CREATE TABLE IF NOT EXISTS api_idempotency (
		key TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		body_hash BLOB NOT NULL,
		status INTEGER NOT NULL,
		content_type TEXT NOT NULL,
		body BLOB NOT NULL,
		created_at INTEGER NOT NULL
	)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("idempotency: create table: %w", err)
	}
	return &idempotency{db: db, clock: clock}, nil
}

// requestHash identifies what a request asked for.
func requestHash(method, route string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// lookup returns the stored response for key, or ok false.
func (s *idempotency) lookup(ctx context.Context, key string) (storedResponse, bool, error) {
	var (
		r    storedResponse
		hash []byte
	)
	err := s.db.QueryRowContext(ctx,
		`SELECT principal, body_hash, status, content_type, body FROM api_idempotency WHERE key = ?`, key).
		Scan(&r.Principal, &hash, &r.Status, &r.ContentType, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return storedResponse{}, false, nil
	}
	if err != nil {
		return storedResponse{}, false, fmt.Errorf("idempotency: lookup: %w", err)
	}
	copy(r.BodyHash[:], hash)
	return r, true, nil
}

// save stores r under key unless a response is already stored; it returns
// the response that is stored afterwards (r, or the earlier one).
func (s *idempotency) save(ctx context.Context, key string, r storedResponse) (storedResponse, error) {
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO api_idempotency (key, principal, body_hash, status, content_type, body, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		key, r.Principal, r.BodyHash[:], r.Status, r.ContentType, r.Body, s.clock().UnixMilli())
	if err != nil {
		return storedResponse{}, fmt.Errorf("idempotency: save: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return r, nil
	}
	prev, ok, err := s.lookup(ctx, key)
	if err != nil {
		return storedResponse{}, err
	}
	if !ok {
		return storedResponse{}, errors.New("idempotency: stored response vanished")
	}
	return prev, nil
}

// purge deletes responses older than age. The key store is not a log: keys
// are meant for retries within minutes, not forever.
func (s *idempotency) purge(ctx context.Context, age time.Duration) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM api_idempotency WHERE created_at < ?`, s.clock().Add(-age).UnixMilli())
	return err
}

package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"perfledger/domain"
)

// KeyConfig configures a key store.
type KeyConfig struct {
	// Path is the database file, e.g. "data/keys.db". Its directory is
	// created if missing.
	Path string
	// Clock stamps destructions. Nil means domain.SystemClock.
	Clock domain.Clock
}

// Validate reports a configuration that OpenKeyStore would refuse.
func (c KeyConfig) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: key config: empty Path")
	}
	return nil
}

// KeyStore is the SQLite domain.KeyStore: one random 256-bit key per
// member, in its own file. Destroy overwrites the key's bytes in the
// database file (secure_delete) and truncates the write-ahead log, so the
// key cannot be recovered from the file afterwards. Keys are not cached in
// memory.
type KeyStore struct {
	db    *sql.DB
	clock domain.Clock
}

var _ domain.KeyStore = (*KeyStore)(nil)

// OpenKeyStore opens (creating if needed) the key store at cfg.Path.
func OpenKeyStore(ctx context.Context, cfg KeyConfig) (*KeyStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = domain.SystemClock
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open key store: %w", err)
	}
	db, err := sql.Open("sqlite", fileURI(cfg.Path)+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(ON)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open key store: %w", err)
	}
	// One connection: a WAL checkpoint after Destroy must not be held up
	// by a reader of this process.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	ks := &KeyStore{db: db, clock: cfg.Clock}
	if err := ks.check(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open key store %s: %w", cfg.Path, err)
	}
	if err := migrate(ctx, db, "keys"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open key store %s: %w", cfg.Path, err)
	}
	return ks, nil
}

func (k *KeyStore) check(ctx context.Context) error {
	if err := checkPragmas(ctx, k.db, 2); err != nil {
		return err
	}
	var secure int
	if err := k.db.QueryRowContext(ctx, "PRAGMA secure_delete").Scan(&secure); err != nil {
		return err
	}
	if secure != 1 {
		return fmt.Errorf("secure_delete is %d, want 1", secure)
	}
	return nil
}

// Close closes the database.
func (k *KeyStore) Close() error { return k.db.Close() }

// Key implements domain.KeyStore.
func (k *KeyStore) Key(ctx context.Context, memberID string) ([]byte, error) {
	key, err := k.Lookup(ctx, memberID)
	if !errors.Is(err, domain.ErrKeyNotFound) {
		return key, err
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("sqlite: key: %w", err)
	}
	// A concurrent creator may win: the key read back is the one stored.
	if _, err := k.db.ExecContext(ctx,
		"INSERT INTO member_keys (member_id, key) VALUES (?, ?) ON CONFLICT (member_id) DO NOTHING", memberID, fresh); err != nil {
		return nil, fmt.Errorf("sqlite: key: %w", err)
	}
	return k.Lookup(ctx, memberID)
}

// Lookup implements domain.KeyStore.
func (k *KeyStore) Lookup(ctx context.Context, memberID string) ([]byte, error) {
	var key []byte
	err := k.db.QueryRowContext(ctx, "SELECT key FROM member_keys WHERE member_id = ?", memberID).Scan(&key)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, domain.ErrKeyNotFound
	case err != nil:
		return nil, fmt.Errorf("sqlite: key lookup: %w", err)
	case key == nil:
		return nil, domain.ErrKeyDestroyed
	}
	return key, nil
}

// Destroy implements domain.KeyStore. A member whose key was never made is
// marked destroyed too, so that no key is made for them later.
func (k *KeyStore) Destroy(ctx context.Context, memberID string) error {
	if _, err := k.db.ExecContext(ctx,
		"INSERT INTO member_keys (member_id, key, destroyed_at) VALUES (?, NULL, ?) "+
			"ON CONFLICT (member_id) DO UPDATE SET key = NULL, destroyed_at = coalesce(destroyed_at, excluded.destroyed_at)",
		memberID, k.clock().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: destroy key: %w", err)
	}
	// Copy the pages, now free of the key, into the database file and empty
	// the log, which still holds the earlier page images.
	for attempt := 0; ; attempt++ {
		var busy, logFrames, checkpointed int
		if err := k.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &checkpointed); err != nil {
			return fmt.Errorf("sqlite: destroy key: checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if attempt == 50 {
			return errors.New("sqlite: destroy key: the key is deleted but the write-ahead log could not be truncated (other readers); retry Destroy")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

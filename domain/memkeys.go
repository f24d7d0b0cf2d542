package domain

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
)

// MemKeys is an in-memory KeyStore for tests and demos: keys vanish with
// the process. Safe for concurrent use.
type MemKeys struct {
	mu        sync.Mutex
	keys      map[string][]byte
	destroyed map[string]bool
}

var _ KeyStore = (*MemKeys)(nil)

// NewMemKeys returns an empty in-memory key store.
func NewMemKeys() *MemKeys {
	return &MemKeys{keys: map[string][]byte{}, destroyed: map[string]bool{}}
}

// Key returns the member's key, creating it on first use; ErrKeyDestroyed
// after Destroy.
func (m *MemKeys) Key(ctx context.Context, memberID string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.destroyed[memberID] {
		return nil, fmt.Errorf("member %q: %w", memberID, ErrKeyDestroyed)
	}
	if k, ok := m.keys[memberID]; ok {
		return append([]byte(nil), k...), nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	m.keys[memberID] = k
	return append([]byte(nil), k...), nil
}

// Lookup returns the member's key without creating one.
func (m *MemKeys) Lookup(ctx context.Context, memberID string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.destroyed[memberID] {
		return nil, fmt.Errorf("member %q: %w", memberID, ErrKeyDestroyed)
	}
	k, ok := m.keys[memberID]
	if !ok {
		return nil, fmt.Errorf("member %q: %w", memberID, ErrKeyNotFound)
	}
	return append([]byte(nil), k...), nil
}

// Destroy erases the member's key for good; destroying twice is not an error.
func (m *MemKeys) Destroy(ctx context.Context, memberID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[memberID]; ok {
		clear(k)
		delete(m.keys, memberID)
	}
	m.destroyed[memberID] = true
	return nil
}

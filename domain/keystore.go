package domain

import (
	"context"
	"errors"
)

// ErrKeyDestroyed: the member's key was destroyed (the member was forgotten).
// Readers turn it into an "erased" value; it never breaks a replay.
var ErrKeyDestroyed = errors.New("key destroyed: member forgotten")

// ErrKeyNotFound: no key was ever created for the member.
var ErrKeyNotFound = errors.New("key not found")

// KeyStore holds one AES-256 key per member, outside the event log, so that
// destroying a key makes that member's personal data unreadable for good
// (crypto-shredding) while the log stays untouched and verifiable.
// Implementations are safe for concurrent use.
type KeyStore interface {
	// Key returns the member's 32-byte key, creating it on first use.
	// It returns ErrKeyDestroyed once Destroy has been called for the member.
	Key(ctx context.Context, memberID string) ([]byte, error)
	// Lookup returns the member's key without creating one: ErrKeyNotFound if
	// none was made, ErrKeyDestroyed if it was destroyed.
	Lookup(ctx context.Context, memberID string) ([]byte, error)
	// Destroy erases the member's key for good. Destroying twice is not an error.
	Destroy(ctx context.Context, memberID string) error
}

package domain

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

// ProfileAlg names the encryption of MemberProfileRecorded.
const ProfileAlg = "AES-256-GCM"

// Profile is a member's personal data. It is stored only encrypted, in
// MemberProfileRecorded (see SealProfile), so that forgetting the member
// (destroying their key) makes it unreadable for good.
type Profile struct {
	Birthday string   `json:"birthday,omitempty"` // YYYY-MM-DD
	Hobbies  []string `json:"hobbies,omitempty"`
	Email    string   `json:"email,omitempty"`
	Phone    string   `json:"phone,omitempty"`
	Address  string   `json:"address,omitempty"`
}

// Validate checks the profile's fields; the error wraps ErrInvalid.
func (p Profile) Validate() error {
	if p.Birthday != "" {
		if _, err := requireDate("birthday", p.Birthday); err != nil {
			return err
		}
	}
	if len(p.Hobbies) > 50 {
		return invalidf("hobbies: at most 50")
	}
	for _, h := range p.Hobbies {
		if err := requireText("hobby", h, maxName); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, v string }{{"email", p.Email}, {"phone", p.Phone}, {"address", p.Address}} {
		if err := optText(f.name, f.v, maxName); err != nil {
			return err
		}
	}
	return nil
}

// SealProfile encrypts p with the member's key (created on first use) into a
// MemberProfileRecorded: AES-256-GCM, a random 96-bit nonce, the member id as
// additional data (so a ciphertext cannot be moved to another member). A
// forgotten member's key is gone: the error then wraps ErrRuleViolated and
// ErrKeyDestroyed.
func SealProfile(ctx context.Context, ks KeyStore, memberID string, p Profile) (*MemberProfileRecorded, error) {
	key, err := ks.Key(ctx, memberID)
	if errors.Is(err, ErrKeyDestroyed) {
		return nil, fmt.Errorf("%w: member %q was forgotten: %w", ErrRuleViolated, memberID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("seal profile of %q: %w", memberID, err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("seal profile of %q: %w", memberID, err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal profile of %q: %w", memberID, err)
	}
	return &MemberProfileRecorded{
		MemberID:   memberID,
		Alg:        ProfileAlg,
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plain, []byte(memberID)),
	}, nil
}

// OpenProfile decrypts the profile of ev. When the member was forgotten (the
// key is destroyed) it returns erased=true and no error, so replays and
// read models never break on a forgotten member. Any other failure (no key,
// a tampered ciphertext) is an error.
func OpenProfile(ctx context.Context, ks KeyStore, ev *MemberProfileRecorded) (p Profile, erased bool, err error) {
	key, err := ks.Lookup(ctx, ev.MemberID)
	if errors.Is(err, ErrKeyDestroyed) {
		return Profile{}, true, nil
	}
	if err != nil {
		return Profile{}, false, fmt.Errorf("open profile of %q: %w", ev.MemberID, err)
	}
	if ev.Alg != ProfileAlg {
		return Profile{}, false, fmt.Errorf("open profile of %q: unknown algorithm %q", ev.MemberID, ev.Alg)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return Profile{}, false, err
	}
	if len(ev.Nonce) != aead.NonceSize() {
		return Profile{}, false, fmt.Errorf("open profile of %q: bad nonce", ev.MemberID)
	}
	plain, err := aead.Open(nil, ev.Nonce, ev.Ciphertext, []byte(ev.MemberID))
	if err != nil {
		return Profile{}, false, fmt.Errorf("open profile of %q: %w", ev.MemberID, err)
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return Profile{}, false, fmt.Errorf("open profile of %q: %w", ev.MemberID, err)
	}
	return p, false, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("profile key: %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("profile key: %w", err)
	}
	return cipher.NewGCM(block)
}

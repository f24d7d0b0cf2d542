package domain

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProfileSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	ks := NewMemKeys()
	want := Profile{Birthday: "1990-04-01", Hobbies: []string{"chess", "trail running"}, Email: "ana@example.com", Phone: "+34 600 000 000"}
	ev, err := SealProfile(ctx, ks, "m-1", want)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Alg != ProfileAlg || len(ev.Nonce) != 12 {
		t.Errorf("alg %q nonce %d bytes, want %s and 12", ev.Alg, len(ev.Nonce), ProfileAlg)
	}
	if containsBytes(ev.Ciphertext, []byte("chess")) {
		t.Error("ciphertext contains the plain hobby")
	}
	got, erased, err := OpenProfile(ctx, ks, ev)
	if err != nil || erased {
		t.Fatalf("OpenProfile: erased %v, err %v", erased, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
}

func TestProfileOfForgottenMemberIsErasedNotAnError(t *testing.T) {
	ctx := context.Background()
	ks := NewMemKeys()
	ev, err := SealProfile(ctx, ks, "m-1", Profile{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Destroy(ctx, "m-1"); err != nil {
		t.Fatal(err)
	}
	got, erased, err := OpenProfile(ctx, ks, ev)
	if err != nil || !erased {
		t.Fatalf("OpenProfile after destroy: erased %v, err %v; want erased and no error", erased, err)
	}
	if diff := cmp.Diff(Profile{}, got); diff != "" {
		t.Errorf("erased profile is not empty:\n%s", diff)
	}
	if _, err := SealProfile(ctx, ks, "m-1", Profile{}); !errors.Is(err, ErrRuleViolated) || !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("SealProfile after destroy: %v, want ErrRuleViolated and ErrKeyDestroyed", err)
	}
}

func TestProfileCannotBeMovedToAnotherMember(t *testing.T) {
	ctx := context.Background()
	ks := NewMemKeys()
	ev, err := SealProfile(ctx, ks, "m-1", Profile{Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Key(ctx, "m-2"); err != nil {
		t.Fatal(err)
	}
	moved := *ev
	moved.MemberID = "m-2"
	if _, _, err := OpenProfile(ctx, ks, &moved); err == nil {
		t.Fatal("a profile sealed for m-1 opened as m-2's")
	}
	tampered := *ev
	tampered.Ciphertext = append([]byte(nil), ev.Ciphertext...)
	tampered.Ciphertext[0] ^= 1
	if _, _, err := OpenProfile(ctx, ks, &tampered); err == nil {
		t.Fatal("a tampered ciphertext opened")
	}
}

func TestMemKeys(t *testing.T) {
	ctx := context.Background()
	ks := NewMemKeys()
	if _, err := ks.Lookup(ctx, "m-1"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Lookup before Key: %v, want ErrKeyNotFound", err)
	}
	k1, err := ks.Key(ctx, "m-1")
	if err != nil || len(k1) != 32 {
		t.Fatalf("Key: %d bytes, %v", len(k1), err)
	}
	k2, _ := ks.Key(ctx, "m-1")
	k3, _ := ks.Lookup(ctx, "m-1")
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Errorf("second Key differs:\n%s", diff)
	}
	if diff := cmp.Diff(k1, k3); diff != "" {
		t.Errorf("Lookup differs:\n%s", diff)
	}
	for range 2 {
		if err := ks.Destroy(ctx, "m-1"); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
	}
	if _, err := ks.Key(ctx, "m-1"); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Key after Destroy: %v, want ErrKeyDestroyed", err)
	}
	if _, err := ks.Lookup(ctx, "m-1"); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Lookup after Destroy: %v, want ErrKeyDestroyed", err)
	}
}

func containsBytes(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return true
		}
	}
	return false
}

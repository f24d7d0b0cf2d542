package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"
)

// openDB opens a fresh SQLite database in a temporary folder.
func openDB(tb testing.TB, name string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(tb.TempDir(), name)+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestTokens(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	db := openDB(t, "api.db")
	toks, err := NewTokens(ctx, db, clock.Now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("created token authenticates as its principal", func(t *testing.T) {
		info, secret, err := toks.Create(ctx, NewToken{Role: RoleRep, MemberID: "m1", TeamID: "t1", Label: "laptop"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, TokenPrefix) || len(secret) < len(TokenPrefix)+43 {
			t.Fatalf("secret %q: want %s and 32 random bytes", secret, TokenPrefix)
		}
		got, err := toks.Authenticate(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(info.Principal, got); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	})

	t.Run("only the hash is stored", func(t *testing.T) {
		_, secret, err := toks.Create(ctx, NewToken{Role: RoleAuditor})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM tokens WHERE CAST(hash AS TEXT) LIKE ? OR label LIKE ? OR id LIKE ?`,
			"%"+secret[4:]+"%", "%"+secret[4:]+"%", "%"+secret[4:]+"%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the secret appears in %d rows", n)
		}
	})

	t.Run("rep token without member is refused", func(t *testing.T) {
		if _, _, err := toks.Create(ctx, NewToken{Role: RoleRep}); err == nil {
			t.Fatal("want an error")
		}
		if _, _, err := toks.Create(ctx, NewToken{Role: "boss"}); err == nil {
			t.Fatal("want an error for an unknown role")
		}
	})

	t.Run("unknown and malformed secrets are refused", func(t *testing.T) {
		for _, s := range []string{"", "plg_", "plg_nope", "Bearer x", strings.Repeat("a", 500)} {
			if _, err := toks.Authenticate(ctx, s); !errors.Is(err, errBadToken) {
				t.Errorf("Authenticate(%q) = %v, want errBadToken", s, err)
			}
		}
	})

	t.Run("revoked token is refused at once even when cached", func(t *testing.T) {
		info, secret, err := toks.Create(ctx, NewToken{Role: RoleHR})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := toks.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if err := toks.Revoke(ctx, info.TokenID); err != nil {
			t.Fatal(err)
		}
		if _, err := toks.Authenticate(ctx, secret); !errors.Is(err, errBadToken) {
			t.Fatalf("after revoke: %v, want errBadToken", err)
		}
		if err := toks.Revoke(ctx, "no-such-id"); !errors.Is(err, ErrTokenNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
	})

	t.Run("revocation by another process takes effect after the cache TTL", func(t *testing.T) {
		info, secret, err := toks.Create(ctx, NewToken{Role: RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := toks.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		other, err := NewTokens(ctx, db, clock.Now, time.Minute) // the CLI
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Revoke(ctx, info.TokenID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := toks.Authenticate(ctx, secret); !errors.Is(err, errBadToken) {
			t.Fatalf("after TTL: %v, want errBadToken", err)
		}
	})

	t.Run("list shows every token without secrets", func(t *testing.T) {
		list, err := toks.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 4 {
			t.Fatalf("listed %d tokens, want 4", len(list))
		}
		revoked := 0
		for _, ti := range list {
			if ti.RevokedAt != nil {
				revoked++
			}
		}
		if revoked != 2 {
			t.Errorf("%d revoked, want 2", revoked)
		}
	})
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(RateLimit{Rate: 10, Burst: 3})
	var got []bool
	for range 5 {
		ok, _ := l.allow("a", now)
		got = append(got, ok)
	}
	if diff := cmp.Diff([]bool{true, true, true, false, false}, got); diff != "" {
		t.Errorf("burst (-want +got):\n%s", diff)
	}
	if ok, wait := l.allow("a", now); ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Errorf("empty bucket: ok=%v wait=%v, want refused with a wait ≤ 100ms", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Error("another principal has its own bucket")
	}
	if ok, _ := l.allow("a", now.Add(100*time.Millisecond)); !ok {
		t.Error("a token refills after 1/rate")
	}
	var off *limiter
	if ok, _ := off.allow("a", now); !ok {
		t.Error("a nil limiter allows everything")
	}
}

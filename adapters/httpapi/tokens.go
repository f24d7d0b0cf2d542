package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"perfledger/domain"
)

// Role is what a principal may do (DOMAIN.md §7).
type Role string

// The roles of DOMAIN.md §7.
const (
	RoleRep     Role = "rep"
	RoleManager Role = "manager"
	RoleHR      Role = "hr"
	RoleAuditor Role = "auditor"
	RoleAdmin   Role = "admin"
)

// Roles lists every role, lowest privilege first.
var Roles = []Role{RoleRep, RoleManager, RoleHR, RoleAuditor, RoleAdmin}

// ParseRole returns the role named s, or an error listing the valid ones.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: want one of rep, manager, hr, auditor, admin", s)
}

// Principal is the authenticated caller: the token's id (never its secret),
// its role, and for reps and managers the member and team it speaks for.
type Principal struct {
	TokenID  string `json:"token_id"`
	Role     Role   `json:"role"`
	MemberID string `json:"member_id,omitempty"`
	TeamID   string `json:"team_id,omitempty"`
}

// Actor is the principal as recorded in an event's envelope: the member it
// speaks for when it has one, else its role and token id.
func (p Principal) Actor() string {
	if p.MemberID != "" {
		return "member:" + p.MemberID
	}
	return string(p.Role) + ":" + p.TokenID
}

// TokenInfo describes a stored token. It never holds the secret.
type TokenInfo struct {
	Principal
	Label     string     `json:"label,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// NewToken is what Tokens.Create needs.
type NewToken struct {
	Role     Role
	MemberID string // required for rep and manager; optional otherwise
	TeamID   string // required for rep and manager; optional otherwise
	Label    string // free text for people ("Ana's laptop")
}

// Validate reports what is wrong with t.
func (t NewToken) Validate() error {
	if _, err := ParseRole(string(t.Role)); err != nil {
		return err
	}
	if t.Role == RoleRep || t.Role == RoleManager {
		if t.MemberID == "" || t.TeamID == "" {
			return fmt.Errorf("a %s token needs a member id and a team id", t.Role)
		}
	}
	if len(t.Label) > 200 {
		return errors.New("label longer than 200 characters")
	}
	return nil
}

// ErrTokenNotFound: no token has that id (Revoke).
var ErrTokenNotFound = errors.New("token not found")

// errBadToken: the presented bearer token is unknown, malformed or revoked.
var errBadToken = errors.New("invalid or revoked token")

// TokenPrefix starts every token secret, so that a leaked one is easy to
// recognise in logs and scanners.
const TokenPrefix = "plg_"

// Tokens stores API tokens as SHA-256 hashes of their secrets in the table
// `tokens` of a SQL database. The secret is returned once, by Create, and
// is never stored or logged. Authenticate caches hash → principal for
// CacheTTL; Revoke in this process drops the entry at once, and a revocation
// made by another process (the CLI) takes effect within CacheTTL. All methods
// are safe for concurrent use.
type Tokens struct {
	db    *sql.DB
	clock domain.Clock
	ttl   time.Duration

	mu    sync.RWMutex
	cache map[[32]byte]cachedPrincipal
}

type cachedPrincipal struct {
	p       Principal
	hash    [32]byte
	expires time.Time
}

// DefaultTokenCacheTTL is how long an authenticated token is trusted without
// looking at the database again.
const DefaultTokenCacheTTL = 5 * time.Second

// NewTokens creates the tokens table if needed. ttl ≤ 0 means
// DefaultTokenCacheTTL; clock nil means domain.SystemClock.
func NewTokens(ctx context.Context, db *sql.DB, clock domain.Clock, ttl time.Duration) (*Tokens, error) {
	if db == nil {
		return nil, errors.New("tokens: nil database")
	}
	if clock == nil {
		clock = domain.SystemClock
	}
	if ttl <= 0 {
		ttl = DefaultTokenCacheTTL
	}
	const schema = `CREATE TABLE IF NOT EXISTS tokens (
		id TEXT PRIMARY KEY,
		hash BLOB NOT NULL UNIQUE,
		role TEXT NOT NULL,
		member_id TEXT NOT NULL DEFAULT '',
		team_id TEXT NOT NULL DEFAULT '',
		label TEXT NOT NULL DEFAULT '',
		created_at INTEGER NOT NULL,
		revoked_at INTEGER
	)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("tokens: create table: %w", err)
	}
	return &Tokens{db: db, clock: clock, ttl: ttl, cache: make(map[[32]byte]cachedPrincipal)}, nil
}

// Create stores a new token and returns its description and its secret. The
// secret is shown once: only its hash is kept.
func (t *Tokens) Create(ctx context.Context, nt NewToken) (TokenInfo, string, error) {
	if err := nt.Validate(); err != nil {
		return TokenInfo{}, "", fmt.Errorf("%w: %w", domain.ErrInvalid, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return TokenInfo{}, "", fmt.Errorf("tokens: random: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(secret))
	info := TokenInfo{
		Principal: Principal{TokenID: domain.NewID(), Role: nt.Role, MemberID: nt.MemberID, TeamID: nt.TeamID},
		Label:     nt.Label,
		CreatedAt: t.clock().UTC().Truncate(time.Millisecond),
	}
	_, err := t.db.ExecContext(ctx,
		`INSERT INTO tokens (id, hash, role, member_id, team_id, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		info.TokenID, h[:], string(info.Role), info.MemberID, info.TeamID, info.Label, info.CreatedAt.UnixMilli())
	if err != nil {
		return TokenInfo{}, "", fmt.Errorf("tokens: insert: %w", err)
	}
	return info, secret, nil
}

// List returns every token, revoked ones included, oldest first. No secret.
func (t *Tokens) List(ctx context.Context) ([]TokenInfo, error) {
	rows, err := t.db.QueryContext(ctx,
		`SELECT id, role, member_id, team_id, label, created_at, revoked_at FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("tokens: list: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var (
			ti      TokenInfo
			role    string
			created int64
			revoked sql.NullInt64
		)
		if err := rows.Scan(&ti.TokenID, &role, &ti.MemberID, &ti.TeamID, &ti.Label, &created, &revoked); err != nil {
			return nil, fmt.Errorf("tokens: list: %w", err)
		}
		ti.Role = Role(role)
		ti.CreatedAt = time.UnixMilli(created).UTC()
		if revoked.Valid {
			r := time.UnixMilli(revoked.Int64).UTC()
			ti.RevokedAt = &r
		}
		out = append(out, ti)
	}
	return out, rows.Err()
}

// HasActive reports whether a token of role exists and is not revoked (the
// first start creates an admin token only when none is active).
func (t *Tokens) HasActive(ctx context.Context, role Role) (bool, error) {
	var n int
	err := t.db.QueryRowContext(ctx, `SELECT count(*) FROM tokens WHERE role = ? AND revoked_at IS NULL`, string(role)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("tokens: %w", err)
	}
	return n > 0, nil
}

// Revoke marks the token revoked; it is refused from then on. Revoking an
// already revoked token is a no-op; an unknown id returns ErrTokenNotFound.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	res, err := t.db.ExecContext(ctx,
		`UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, t.clock().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("tokens: revoke: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	t.mu.Lock()
	for h, c := range t.cache {
		if c.p.TokenID == id {
			delete(t.cache, h)
		}
	}
	t.mu.Unlock()
	return nil
}

// Authenticate returns the principal of a bearer secret, or an error wrapping
// errBadToken for an unknown, malformed or revoked one. The stored hash is
// compared in constant time.
func (t *Tokens) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return Principal{}, errBadToken
	}
	h := sha256.Sum256([]byte(secret))
	now := t.clock()
	t.mu.RLock()
	c, ok := t.cache[h]
	t.mu.RUnlock()
	if ok && now.Before(c.expires) && subtle.ConstantTimeCompare(c.hash[:], h[:]) == 1 {
		return c.p, nil
	}
	var (
		p       Principal
		role    string
		stored  []byte
		revoked sql.NullInt64
	)
	err := t.db.QueryRowContext(ctx,
		`SELECT id, hash, role, member_id, team_id, revoked_at FROM tokens WHERE hash = ?`, h[:]).
		Scan(&p.TokenID, &stored, &role, &p.MemberID, &p.TeamID, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("tokens: authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, h[:]) != 1 || revoked.Valid {
		t.mu.Lock()
		delete(t.cache, h)
		t.mu.Unlock()
		return Principal{}, errBadToken
	}
	p.Role = Role(role)
	t.mu.Lock()
	if len(t.cache) > 100_000 { // bound memory: start over rather than grow
		clear(t.cache)
	}
	t.cache[h] = cachedPrincipal{p: p, hash: h, expires: now.Add(t.ttl)}
	t.mu.Unlock()
	return p, nil
}

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"perfledger/adapters/httpapi"
	"perfledger/adapters/sqlite"
	"perfledger/domain"
)

func (c dataConfig) apiPath() string { return filepath.Join(c.Dir, "api.db") }

// openTokens opens the API's database (tokens and idempotency keys).
func openTokens(ctx context.Context, c dataConfig) (*sql.DB, *httpapi.Tokens, error) {
	db, err := sqlite.OpenDB(ctx, c.apiPath())
	if err != nil {
		return nil, nil, err
	}
	t, err := httpapi.NewTokens(ctx, db, domain.SystemClock, 0)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, t, nil
}

func runToken(ctx context.Context, env *environment, args []string) error {
	const synopsis = `token create --role ROLE [--member ID --team ID] [--label TEXT] | token list | token revoke ID  [--data DIR]

Manages API bearer tokens. Secrets are shown once, at creation, and stored only
as SHA-256 hashes. Roles: rep, manager (both need --member and --team), hr,
auditor, admin.`
	if len(args) == 0 {
		return usageErr("token needs a subcommand: create, list or revoke (see ledger token --help)")
	}
	var c dataConfig
	fs := newFlags(env, "token", synopsis)
	addDataFlags(fs, env, &c)
	var role, member, team, label string
	sub := args[0]
	switch sub {
	case "-h", "--help", "-help":
		return parseFlags(fs, args)
	case "create":
		fs.StringVar(&role, "role", "", "rep, manager, hr, auditor or admin (required)")
		fs.StringVar(&member, "member", "", "member id the token speaks for (rep, manager)")
		fs.StringVar(&team, "team", "", "team id of that member (rep, manager)")
		fs.StringVar(&label, "label", "", "a note for people, e.g. whose laptop")
	case "list", "revoke":
	default:
		return usageErr("unknown token subcommand %q: want create, list or revoke", sub)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	switch {
	case sub == "revoke" && fs.NArg() != 1:
		return usageErr("token revoke needs exactly one token id")
	case sub != "revoke" && fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	var nt httpapi.NewToken
	if sub == "create" {
		r, err := httpapi.ParseRole(role)
		if err != nil {
			return usageErr("--role: %v", err)
		}
		nt = httpapi.NewToken{Role: r, MemberID: member, TeamID: team, Label: label}
		if err := nt.Validate(); err != nil {
			return usageErr("%v", err)
		}
	}
	db, tokens, err := openTokens(ctx, c)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		info, secret, err := tokens.Create(ctx, nt)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "created token %s (role %s); the secret below is shown only once:\n", info.TokenID, info.Role)
		fmt.Fprintln(env.stdout, secret)
	case "list":
		list, err := tokens.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tROLE\tMEMBER\tTEAM\tCREATED\tREVOKED\tLABEL")
		for _, t := range list {
			revoked := "-"
			if t.RevokedAt != nil {
				revoked = t.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.TokenID, t.Role, dash(t.MemberID), dash(t.TeamID),
				t.CreatedAt.Format("2006-01-02 15:04"), revoked, t.Label)
		}
		return tw.Flush()
	case "revoke":
		if err := tokens.Revoke(ctx, fs.Arg(0)); err != nil {
			if errors.Is(err, httpapi.ErrTokenNotFound) {
				return fmt.Errorf("no token with id %q (see ledger token list)", fs.Arg(0))
			}
			return err
		}
		fmt.Fprintf(env.stderr, "revoked token %s\n", fs.Arg(0))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

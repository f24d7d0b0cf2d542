package main

import (
	"context"
	"strings"
	"testing"

	"perfledger/adapters/esdb"
	"perfledger/adapters/esdb/esdbtest"
	"perfledger/domain"
)

func TestMigrateCopiesResumesAndVerifies(t *testing.T) {
	dir := t.TempDir()
	seedLedger(t, dir)
	srv := esdbtest.New(t, esdbtest.Config{})

	// An interrupted earlier run: the first 5 events are already there.
	ctx := context.Background()
	src, err := openStore(ctx, dataConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := esdb.Open(esdb.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for e, err := range src.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		if n == 5 {
			break
		}
		if err := copyEvent(ctx, dst, e); err != nil {
			t.Fatal(err)
		}
		n++
	}
	src.Close()
	dst.Close()

	code, out, stderr := ledgerCLI(t, "migrate", "--from", dir, "--to", srv.URL())
	if code != 0 || !strings.Contains(out, "12 events (5 already there, 7 copied now)") {
		t.Fatalf("migrate: exit %d: %s %s", code, out, stderr)
	}
	_, verify, _ := ledgerCLI(t, "verify", "--data", dir)
	digest := strings.Fields(strings.Split(verify, "digest ")[1])[0]
	if !strings.Contains(out, digest) {
		t.Fatalf("migrated digest differs from the source's %s: %s", digest, out)
	}
	// Running it again copies nothing and still verifies.
	code, out, stderr = ledgerCLI(t, "migrate", "--from", dir, "--to", srv.URL())
	if code != 0 || !strings.Contains(out, "12 already there, 0 copied now") {
		t.Fatalf("second migrate: exit %d: %s %s", code, out, stderr)
	}
	// The target's log, read through the same CLI, verifies with the same digest.
	code, out, _ = ledgerCLI(t, "verify", "--store", srv.URL(), "--digest", digest, "--at", lastPosition(t, srv.URL()))
	if code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("verify on EventStoreDB: exit %d: %s", code, out)
	}
}

func lastPosition(t testing.TB, url string) string {
	t.Helper()
	s, err := esdb.Open(esdb.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last domain.Position
	for e, err := range s.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		last = e.Position
	}
	return last.String()
}

func TestMigrateRefusesADifferentLog(t *testing.T) {
	dir := t.TempDir()
	seedLedger(t, dir)
	srv := esdbtest.New(t, esdbtest.Config{})
	dst, err := esdb.Open(esdb.Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Append(context.Background(), "other-1", domain.NoStream(), []domain.NewEvent{{ID: domain.NewID(), Type: "Other.v1", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	code, _, stderr := ledgerCLI(t, "migrate", "--from", dir, "--to", srv.URL())
	if code == 0 || !strings.Contains(stderr, "different log") {
		t.Fatalf("migrate onto another log: exit %d %s", code, stderr)
	}
}

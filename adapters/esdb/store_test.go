package esdb_test

import (
	"os"
	"testing"

	"perfledger/adapters/esdb"
	"perfledger/adapters/esdb/esdbtest"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

func open(tb testing.TB, cfg esdb.Config) *esdb.Store {
	tb.Helper()
	s, err := esdb.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContractAgainstTestServer(t *testing.T) {
	srv := esdbtest.New(t, esdbtest.Config{})
	s := open(t, esdb.Config{URL: srv.URL(), PageSize: 7})
	storetest.Run(t, func(testing.TB) domain.EventStore { return s }, storetest.Features{Dense: false})
}

func TestContractAgainstRealServer(t *testing.T) {
	url := os.Getenv("LEDGER_ESDB_URL")
	if url == "" {
		t.Skip("LEDGER_ESDB_URL is not set: skipping the contract suite against a real EventStoreDB " +
			"(start one with `docker compose up -d eventstore` and set LEDGER_ESDB_URL=esdb://localhost:2113?tls=false)")
	}
	s := open(t, esdb.Config{URL: url})
	storetest.Run(t, func(testing.TB) domain.EventStore { return s }, storetest.Features{Dense: false})
}

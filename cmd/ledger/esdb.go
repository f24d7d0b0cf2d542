package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"perfledger/adapters/esdb"
)

// openESDB opens the EventStoreDB store at url and checks that it answers.
func openESDB(ctx context.Context, url string) (closingStore, error) {
	s, err := esdb.Open(esdb.Config{URL: url, Logger: slog.Default()})
	if err != nil {
		return nil, usageErr("--store: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("EventStoreDB at %s does not answer: %w", redactURL(url), err)
	}
	return s, nil
}

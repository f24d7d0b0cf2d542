package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
)

// dataConfig says where the ledger keeps its files and which event store it uses.
type dataConfig struct {
	Dir     string // data folder: events.db, views.db (and views-<name>.db, see separateViews), keys.db, admin token
	Store   string // "" or "sqlite" for the embedded store, or an esdb:// URL
	Relaxed bool   // acknowledge appends before they are synced (faster, less durable)
}

func (c dataConfig) Validate() error {
	if strings.TrimSpace(c.Dir) == "" {
		return usageErr("--data must name a folder")
	}
	if c.Store != "" && c.Store != "sqlite" && !strings.HasPrefix(c.Store, "esdb://") && !strings.HasPrefix(c.Store, "esdb+discover://") {
		return usageErr("--store %q: want sqlite or an esdb:// URL", c.Store)
	}
	return nil
}

func (c dataConfig) eventsPath() string { return filepath.Join(c.Dir, "events.db") }
func (c dataConfig) viewsPath() string  { return filepath.Join(c.Dir, "views.db") }
func (c dataConfig) keysPath() string   { return filepath.Join(c.Dir, "keys.db") }

// addDataFlags registers --data (default ./data, or $LEDGER_DATA).
func addDataFlags(fs *flag.FlagSet, env *environment, c *dataConfig) {
	def := env.getenv("LEDGER_DATA")
	if def == "" {
		def = "data"
	}
	fs.StringVar(&c.Dir, "data", def, "data folder (env LEDGER_DATA)")
}

// addStoreFlag registers --store (default embedded, or $LEDGER_STORE).
func addStoreFlag(fs *flag.FlagSet, env *environment, c *dataConfig) {
	fs.StringVar(&c.Store, "store", env.getenv("LEDGER_STORE"), "event store: empty or sqlite for the embedded store, or esdb://host:2113?tls=false (env LEDGER_STORE)")
}

// closer is an event store that must be closed.
type closingStore interface {
	domain.EventStore
	Close() error
}

// openStore opens the configured event store.
func openStore(ctx context.Context, c dataConfig) (closingStore, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Store == "" || c.Store == "sqlite" {
		d := sqlite.Durable
		if c.Relaxed {
			d = sqlite.Relaxed
		}
		s, err := sqlite.Open(ctx, sqlite.Config{Path: c.eventsPath(), Durability: d})
		if err != nil {
			return nil, fmt.Errorf("open event store: %w", err)
		}
		return s, nil
	}
	return openESDB(ctx, c.Store)
}

// openKeys opens the key store of personal-data keys.
func openKeys(ctx context.Context, c dataConfig) (*sqlite.KeyStore, error) {
	k, err := sqlite.OpenKeyStore(ctx, sqlite.KeyConfig{Path: c.keysPath()})
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	return k, nil
}

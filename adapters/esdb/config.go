package esdb

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"perfledger/domain"
)

// Config configures a Store.
type Config struct {
	// URL is the EventStoreDB connection string, e.g.
	// "esdb://localhost:2113?tls=false" or, for a cluster,
	// "esdb://node1:2113,node2:2113,node3:2113?tls=false". Required.
	//
	// The client's discovery defaults are slow to give up on a node that
	// accepts TCP but never answers (10 attempts × 5 s); add
	// "maxDiscoverAttempts=…&gossipTimeout=…" to shorten them. Every call
	// of the Store is bounded by its context whatever these say.
	URL string
	// PageSize is how many events one read request asks for; default 1000.
	PageSize int
	// MaxAppendSize is the largest append, in bytes of data, metadata and
	// type, sent to the server; larger appends fail with
	// domain.ErrInvalidAppend before any I/O. Default 1 MiB, EventStoreDB's
	// default limit; negative disables the check (the server still has its
	// own).
	MaxAppendSize int
	// RetryMin and RetryMax bound the backoff between resubscriptions after
	// a subscription drops; defaults 100 ms and 5 s.
	RetryMin, RetryMax time.Duration
	// AppendRetries bounds how many times an append with domain.Any is
	// retried after losing a race for the stream's revision; default 100.
	AppendRetries int
	// Clock stamps RecordedAt when an event has none; default
	// domain.SystemClock.
	Clock domain.Clock
	// Logger receives the client library's messages (errors and warnings
	// at Warn, the rest at Debug); nil discards them.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("URL is required (e.g. esdb://localhost:2113?tls=false)"))
	} else if _, err := client.ParseConnectionString(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL: %w", err))
	}
	if c.PageSize < 0 {
		errs = append(errs, fmt.Errorf("PageSize %d is negative", c.PageSize))
	}
	if c.RetryMin < 0 || c.RetryMax < 0 {
		errs = append(errs, errors.New("RetryMin and RetryMax must not be negative"))
	}
	if c.RetryMin > 0 && c.RetryMax > 0 && c.RetryMin > c.RetryMax {
		errs = append(errs, fmt.Errorf("RetryMin %s exceeds RetryMax %s", c.RetryMin, c.RetryMax))
	}
	if c.AppendRetries < 0 {
		errs = append(errs, fmt.Errorf("AppendRetries %d is negative", c.AppendRetries))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("esdb config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.MaxAppendSize == 0 {
		c.MaxAppendSize = 1 << 20
	}
	if c.RetryMin == 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.AppendRetries == 0 {
		c.AppendRetries = 100
	}
	if c.Clock == nil {
		c.Clock = domain.SystemClock
	}
	return c
}

// clientLogger routes the client library's log lines to l.
func clientLogger(l *slog.Logger) client.LoggingFunc {
	if l == nil {
		return client.NoopLogging()
	}
	return func(level client.LogLevel, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		switch level {
		case client.LogError, client.LogWarn:
			l.Warn("eventstoredb client: " + msg)
		default:
			l.Debug("eventstoredb client: " + msg)
		}
	}
}

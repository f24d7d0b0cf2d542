package esdb_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"perfledger/adapters/esdb"
	"perfledger/adapters/esdb/esdbtest"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

// The benchmarks run the adapter against the in-process protocol server:
// they characterise the adapter and the client (gRPC, protobuf, JSON
// envelope, hash chain), not EventStoreDB. Client and server share the
// machine's cores.

func benchStore(b *testing.B) (*esdbtest.Server, *esdb.Store) {
	b.Helper()
	srv := esdbtest.New(b, esdbtest.Config{})
	return srv, open(b, esdb.Config{URL: srv.URL()})
}

func perSecond(b *testing.B, events int) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppend: one writer, one event per append, exact expected
// revision (what the command service does).
func BenchmarkAppend(b *testing.B) {
	_, s := benchStore(b)
	ctx := context.Background()
	stream := storetest.StreamName("bench-append")
	exp := domain.NoStream()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		res, err := s.Append(ctx, stream, exp, storetest.Events(1, 200))
		if err != nil {
			b.Fatal(err)
		}
		exp = domain.Exact(res.Revision)
	}
	perSecond(b, b.N)
}

// BenchmarkAppendBatch10: one writer, ten events per append.
func BenchmarkAppendBatch10(b *testing.B) {
	_, s := benchStore(b)
	ctx := context.Background()
	stream := storetest.StreamName("bench-batch")
	exp := domain.NoStream()
	b.ResetTimer()
	for b.Loop() {
		res, err := s.Append(ctx, stream, exp, storetest.Events(10, 200))
		if err != nil {
			b.Fatal(err)
		}
		exp = domain.Exact(res.Revision)
	}
	perSecond(b, 10*b.N)
}

// BenchmarkAppendConcurrent64: 64 writers on their own streams, one event
// per append.
func BenchmarkAppendConcurrent64(b *testing.B) {
	_, s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := storetest.StreamName("bench-conc")
		exp := domain.NoStream()
		for pb.Next() {
			res, err := s.Append(ctx, stream, exp, storetest.Events(1, 200))
			if err != nil {
				b.Error(err)
				return
			}
			exp = domain.Exact(res.Revision)
			n.Add(1)
		}
	})
	perSecond(b, int(n.Load()))
}

// fixture is a server holding many events of the benchmark's streams, built
// once per process with large appends.
var fixture struct {
	once   sync.Once
	srv    *esdbtest.Server
	prefix string
	err    error
}

const fixtureEvents = 100_000

func loadFixture(b *testing.B) (*esdbtest.Server, string) {
	b.Helper()
	fixture.once.Do(func() {
		srv, err := esdbtest.Start(esdbtest.Config{})
		if err != nil {
			fixture.err = err
			return
		}
		s, err := esdb.Open(esdb.Config{URL: srv.URL()})
		if err != nil {
			fixture.err = err
			return
		}
		defer func() { _ = s.Close() }()
		fixture.srv, fixture.prefix = srv, storetest.StreamName("bench-fixture")
		const perAppend = 500
		for i := 0; i < fixtureEvents/perAppend; i++ {
			stream := fmt.Sprintf("%s-%d", fixture.prefix, i%50)
			if _, err := s.Append(context.Background(), stream, domain.Any(), storetest.Events(perAppend, 200)); err != nil {
				fixture.err = err
				return
			}
			if i%20 == 0 {
				srv.AppendSystemEvent("$stats", "$statsCollected")
			}
		}
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.srv, fixture.prefix
}

// BenchmarkReadAll: the whole fixture through ReadAll, decoded.
func BenchmarkReadAll(b *testing.B) {
	srv, prefix := loadFixture(b)
	s := open(b, esdb.Config{URL: srv.URL()})
	total := 0
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for e, err := range s.ReadAll(context.Background(), domain.Position{}) {
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(e.Stream, prefix) {
				n++
			}
		}
		if n != fixtureEvents {
			b.Fatalf("read %d events, want %d", n, fixtureEvents)
		}
		total += n
	}
	perSecond(b, total)
}

// BenchmarkReadStream: one 2,000-event stream of the fixture, decoded.
func BenchmarkReadStream(b *testing.B) {
	srv, prefix := loadFixture(b)
	s := open(b, esdb.Config{URL: srv.URL()})
	total := 0
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadStream(context.Background(), prefix+"-7", 0) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		total += n
	}
	perSecond(b, total)
}

// BenchmarkSubscribeCatchUp100k: a subscription from the start catching up
// the 100,000-event fixture (target ≥ 20,000 events/s).
func BenchmarkSubscribeCatchUp100k(b *testing.B) {
	srv, prefix := loadFixture(b)
	s := open(b, esdb.Config{URL: srv.URL()})
	total := 0
	b.ResetTimer()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		n := 0
		for e, err := range s.Subscribe(ctx, domain.Position{}) {
			if err != nil {
				b.Fatal(err)
			}
			if strings.HasPrefix(e.Stream, prefix) {
				n++
				if n == fixtureEvents {
					break
				}
			}
		}
		cancel()
		total += n
	}
	perSecond(b, total)
}

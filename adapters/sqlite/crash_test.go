package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

// crashChildEnv switches the test binary into the appending child of
// TestCrashKeepsAcknowledgedAppends; its value is the database path.
const crashChildEnv = "PERFLEDGER_SQLITE_CRASH_CHILD"

// TestCrashChild is the child process: it appends in a loop from several
// goroutines and prints "stream revision id" for every acknowledged event,
// until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledgedAppends")
	}
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			stream := fmt.Sprintf("crash-%d", w)
			exp := domain.NoStream()
			for i := 0; ; i++ {
				evs := storetest.Events(1+i%3, 200) // some appends carry several events
				res, err := s.Append(context.Background(), stream, exp, evs)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				var b strings.Builder
				first := res.Revision + 1 - uint64(len(evs))
				for j, e := range evs {
					fmt.Fprintf(&b, "%s %d %s\n", stream, first+uint64(j), e.ID)
				}
				out.Lock()
				os.Stdout.WriteString(b.String()) // unbuffered: what is printed was acknowledged
				out.Unlock()
				exp = domain.Exact(res.Revision)
			}
		})
	}
	wg.Wait()
}

func TestCrashKeepsAcknowledgedAppends(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		stream string
		rev    uint64
		id     string
	}
	var acks []ack
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may have died already
		}
	}
	// Kill after enough acknowledgements, or after a few seconds on a very
	// slow machine; the numbers are not asserted.
	timer := time.AfterFunc(5*time.Second, kill)
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue // a line cut by the kill, or test framework output
		}
		rev, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		acks = append(acks, ack{f[0], rev, f[2]})
		if len(acks) >= 1500 {
			kill()
		}
	}
	kill()
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child ended with %v before being killed; stderr:\n%s", err, stderr.String())
	}
	if len(acks) == 0 {
		t.Fatalf("child acknowledged nothing; stderr:\n%s", stderr.String())
	}
	t.Logf("child acknowledged %d events before SIGKILL", len(acks))

	s := openStore(t, sqlite.Config{Path: path})
	ctx := context.Background()
	stored := make(map[string]map[uint64]string)
	v := domain.NewChainVerifier()
	var n uint64
	for e, err := range s.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Position != domain.Seq(n) {
			t.Fatalf("event %d at position %s: positions have a gap", n, e.Position)
		}
		if err := v.Check(&e); err != nil { // also checks revisions have no gap
			t.Fatal(err)
		}
		if stored[e.Stream] == nil {
			stored[e.Stream] = make(map[uint64]string)
		}
		stored[e.Stream][e.Revision] = e.ID
	}
	for _, a := range acks {
		if got := stored[a.stream][a.rev]; got != a.id {
			t.Fatalf("acknowledged %s@%d (%s) not stored (found %q)", a.stream, a.rev, a.id, got)
		}
	}
	// Every stream reads back whole, and the reopened store appends on.
	for stream, revs := range stored {
		evs, err := collectStream(s, stream)
		if err != nil || len(evs) != len(revs) {
			t.Fatalf("ReadStream(%s) = %d events, %v; want %d", stream, len(evs), err, len(revs))
		}
		res, err := s.Append(ctx, stream, domain.Exact(uint64(len(revs)-1)), storetest.Events(1, 10))
		if err != nil || res.Revision != uint64(len(revs)) {
			t.Fatalf("append after reopen: %+v, %v", res, err)
		}
	}
}

func collectStream(s domain.EventStore, stream string) ([]domain.Event, error) {
	var out []domain.Event
	for e, err := range s.ReadStream(context.Background(), stream, 0) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

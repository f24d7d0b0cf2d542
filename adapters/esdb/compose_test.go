package esdb_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"perfledger/adapters/esdb"
)

// The compose file at the root of the repository describes the EventStoreDB
// deployment. These tests read it (with a small reader for the YAML subset
// the file uses) and check that it is consistent with the binary and with
// itself.

// yamlNode is a block mapping, a block list of scalars, or a scalar.
type yamlNode struct {
	scalar string
	keys   []string
	m      map[string]*yamlNode
	list   []string
}

func (n *yamlNode) get(path ...string) *yamlNode {
	for _, k := range path {
		if n == nil || n.m == nil {
			return nil
		}
		n = n.m[k]
	}
	return n
}

type yamlLine struct {
	no     int
	indent int
	text   string
}

// readYAML reads block mappings, block lists of scalars, quoted or plain
// scalars and flow lists kept as scalars; comments on their own lines.
func readYAML(tb testing.TB, path string) *yamlNode {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var lines []yamlLine
	sc := bufio.NewScanner(f)
	for no := 1; sc.Scan(); no++ {
		raw := strings.TrimRight(sc.Text(), " ")
		text := strings.TrimLeft(raw, " ")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if strings.Contains(raw, "\t") {
			tb.Fatalf("%s:%d: tab in indentation", path, no)
		}
		lines = append(lines, yamlLine{no: no, indent: len(raw) - len(text), text: text})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	root, next := parseBlock(tb, path, lines, 0, 0)
	if next != len(lines) {
		tb.Fatalf("%s:%d: unexpected indentation", path, lines[next].no)
	}
	return root
}

func parseBlock(tb testing.TB, path string, lines []yamlLine, i, indent int) (*yamlNode, int) {
	tb.Helper()
	n := &yamlNode{}
	if i < len(lines) && strings.HasPrefix(lines[i].text, "- ") {
		for i < len(lines) && lines[i].indent == indent && strings.HasPrefix(lines[i].text, "- ") {
			n.list = append(n.list, unquote(strings.TrimPrefix(lines[i].text, "- ")))
			i++
		}
		return n, i
	}
	n.m = map[string]*yamlNode{}
	for i < len(lines) && lines[i].indent == indent {
		l := lines[i]
		key, rest, ok := strings.Cut(l.text, ":")
		if !ok || strings.HasPrefix(l.text, "- ") {
			tb.Fatalf("%s:%d: want key: value, got %q", path, l.no, l.text)
		}
		if _, dup := n.m[key]; dup {
			tb.Fatalf("%s:%d: key %q repeated", path, l.no, key)
		}
		rest = strings.TrimSpace(rest)
		i++
		var child *yamlNode
		switch {
		case rest != "":
			child = &yamlNode{scalar: unquote(rest)}
		case i < len(lines) && lines[i].indent > indent:
			child, i = parseBlock(tb, path, lines, i, lines[i].indent)
		case i < len(lines) && lines[i].indent == indent && strings.HasPrefix(lines[i].text, "- "):
			child, i = parseBlock(tb, path, lines, i, indent)
		default:
			child = &yamlNode{}
		}
		n.keys = append(n.keys, key)
		n.m[key] = child
	}
	return n, i
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// envReadByBinary returns the environment variables cmd/ledger reads, from
// the string literals it passes to getenv, os.Getenv or os.LookupEnv.
func envReadByBinary(tb testing.TB, dir string) map[string]bool {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		tb.Skipf("no sources in %s: cannot tell which environment variables the binary reads", dir)
	}
	re := regexp.MustCompile(`(?:getenv|Getenv|LookupEnv)\("([A-Z0-9_]+)"\)`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	return out
}

const composePath = "../../docker-compose.yml"

func TestComposeFile(t *testing.T) {
	doc := readYAML(t, composePath)
	services := doc.get("services")
	if services == nil || len(services.keys) == 0 {
		t.Fatal("no services")
	}
	declared := doc.get("volumes")
	if declared == nil {
		t.Fatal("no top-level volumes")
	}
	isLedger := func(name string) bool { return services.get(name, "build") != nil }
	profiles := func(name string) string {
		if p := services.get(name, "profiles"); p != nil {
			return p.scalar
		}
		return ""
	}

	t.Run("ledger_services_set_only_variables_the_binary_reads", func(t *testing.T) {
		read := envReadByBinary(t, "../../cmd/ledger")
		for _, name := range services.keys {
			if !isLedger(name) {
				continue
			}
			env := services.get(name, "environment")
			if env == nil {
				t.Errorf("service %s sets no environment", name)
				continue
			}
			for _, k := range env.keys {
				if !read[k] {
					t.Errorf("service %s sets %s, which cmd/ledger does not read", name, k)
				}
			}
		}
	})

	t.Run("ledger_stores_are_valid_and_point_at_services_of_the_same_profile", func(t *testing.T) {
		for _, name := range services.keys {
			if !isLedger(name) {
				continue
			}
			store := services.get(name, "environment", "LEDGER_STORE")
			if store == nil {
				t.Errorf("service %s has no LEDGER_STORE", name)
				continue
			}
			if err := (esdb.Config{URL: store.scalar}).Validate(); err != nil {
				t.Errorf("service %s: LEDGER_STORE: %v", name, err)
			}
			_, rest, _ := strings.Cut(store.scalar, "://")
			hosts, _, _ := strings.Cut(rest, "?")
			hosts, _, _ = strings.Cut(hosts, "/")
			for _, hp := range strings.Split(hosts, ",") {
				host, _, _ := strings.Cut(hp, ":")
				if services.get(host) == nil {
					t.Errorf("service %s: LEDGER_STORE names %s, which is not a service", name, host)
				} else if profiles(host) != profiles(name) {
					t.Errorf("service %s (profile %q) uses %s (profile %q)", name, profiles(name), host, profiles(host))
				}
				if dep := services.get(name, "depends_on", host); dep == nil {
					t.Errorf("service %s does not depend on %s", name, host)
				}
			}
		}
	})

	t.Run("host_ports_are_unique_and_reach_the_right_container_port", func(t *testing.T) {
		used := map[string]string{}
		for _, name := range services.keys {
			ports := services.get(name, "ports")
			if ports == nil {
				continue
			}
			for _, p := range ports.list {
				host, container, ok := strings.Cut(p, ":")
				if !ok {
					t.Errorf("service %s: port %q: want HOST:CONTAINER", name, p)
					continue
				}
				if other, dup := used[host]; dup {
					t.Errorf("host port %s used by %s and %s", host, other, name)
				}
				used[host] = name
				want := "2113"
				if isLedger(name) {
					want = "8080" // the binary's default listen address
				}
				if container != want {
					t.Errorf("service %s publishes container port %s, want %s", name, container, want)
				}
			}
		}
	})

	t.Run("volumes_are_declared_used_and_never_shared", func(t *testing.T) {
		usedBy := map[string]string{}
		for _, name := range services.keys {
			vols := services.get(name, "volumes")
			if vols == nil {
				t.Errorf("service %s has no volume: its data would not survive a restart", name)
				continue
			}
			for _, v := range vols.list {
				vol, target, _ := strings.Cut(v, ":")
				if declared.get(vol) == nil {
					t.Errorf("service %s uses volume %s, not declared", name, vol)
				}
				if other, dup := usedBy[vol]; dup {
					t.Errorf("volume %s shared by %s and %s: every node has its own", vol, other, name)
				}
				usedBy[vol] = name
				if isLedger(name) {
					if data := services.get(name, "environment", "LEDGER_DATA"); data == nil || data.scalar != target {
						t.Errorf("service %s mounts %s on %s, but LEDGER_DATA is not that folder", name, vol, target)
					}
				} else if target != "/var/lib/eventstore" {
					t.Errorf("service %s mounts %s on %s, want /var/lib/eventstore", name, vol, target)
				}
			}
		}
		for _, vol := range declared.keys {
			if _, ok := usedBy[vol]; !ok {
				t.Errorf("volume %s declared but not used", vol)
			}
		}
	})

	t.Run("cluster_profile_has_three_gossiping_nodes_and_two_ledgers", func(t *testing.T) {
		var nodes, ledgers []string
		for _, name := range services.keys {
			if profiles(name) != `["cluster"]` {
				continue
			}
			if isLedger(name) {
				ledgers = append(ledgers, name)
			} else {
				nodes = append(nodes, name)
			}
		}
		if len(nodes) != 3 || len(ledgers) != 2 {
			t.Fatalf("cluster profile: %d EventStoreDB nodes and %d ledgers, want 3 and 2", len(nodes), len(ledgers))
		}
		for _, n := range nodes {
			if size := services.get(n, "environment", "EVENTSTORE_CLUSTER_SIZE"); size == nil || size.scalar != "3" {
				t.Errorf("%s: EVENTSTORE_CLUSTER_SIZE is not 3", n)
			}
			seed := services.get(n, "environment", "EVENTSTORE_GOSSIP_SEED")
			if seed == nil {
				t.Errorf("%s: no EVENTSTORE_GOSSIP_SEED", n)
				continue
			}
			var want []string
			for _, o := range nodes {
				if o != n {
					want = append(want, o+":2113")
				}
			}
			got := strings.Split(seed.scalar, ",")
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: gossip seed %v, want the other nodes %v", n, got, want)
			}
		}
	})
}

// Command ledger runs the event-sourced performance ledger: the HTTP API with
// its projections (serve), a realistic demo organisation (demo), and the
// operator's tools (events, token, rebuild, verify, export, import, migrate).
//
// Flags and environment variables are read here and only here; everything
// else receives a validated config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// exitUsage is the exit status for bad flags or arguments.
const exitUsage = 2

// errUsage marks an error caused by the command line; it exits with status 2.
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a subcommand may use from the process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commands() map[string]command {
	list := []command{
		{"serve", "run the HTTP API with the embedded store and projections", runServe},
		{"demo", "generate a realistic demo organisation into the ledger", runDemo},
		{"events", "print the event log as JSON lines", runEvents},
		{"token", "create, list or revoke API tokens", runToken},
		{"rebuild", "rebuild read models from the event log", runRebuild},
		{"verify", "verify every hash chain and print the ledger digest", runVerify},
		{"export", "write the event log with full envelopes as JSON lines", runExport},
		{"import", "load an exported log into an empty data folder", runImport},
		{"migrate", "copy an embedded ledger into EventStoreDB", runMigrate},
	}
	m := make(map[string]command, len(list))
	for _, c := range list {
		m[c.name] = c
	}
	return m
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ledger: an event-sourced performance ledger for sales and marketing teams")
	fmt.Fprintln(w, "\nUsage: ledger <command> [flags]    (ledger <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nData lives in ./data unless --data (or LEDGER_DATA) says otherwise.")
}

// run executes the command line and returns the process exit status.
func run(ctx context.Context, args []string, env *environment) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(env.stdout)
		return 0
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "ledger: unknown command %q (see ledger --help)\n", args[0])
		return exitUsage
	}
	err := c.run(ctx, env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.stderr, "ledger %s: %s\n", c.name, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return exitUsage
	default:
		fmt.Fprintf(env.stderr, "ledger %s: %v\n", c.name, err)
		return 1
	}
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints its help to stdout on --help.
func newFlags(env *environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ledger "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fs.SetOutput(env.stdout)
		fmt.Fprintf(env.stdout, "Usage: ledger %s\n\n", synopsis)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, turning flag errors into one-line usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // Parse has printed the help
		}
		return usageErr("%v", err)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

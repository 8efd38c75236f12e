// Command onesync is OneSync's one binary. Its subcommands run everything
// on one machine for development (dev), the Temporal worker (worker) and
// the HTTP side (api) against a real Temporal cluster, and the one-off
// tasks an operator needs (staff add).
//
// Every subcommand reads one configuration struct from flags and ONESYNC_*
// environment variables (a flag wins over the variable), validates it
// before it starts anything, and logs it at start with secrets shown only
// as "set" or "unset".
//
// Exit codes: 0 after a clean stop, 1 when something failed while running
// (for example an unreachable Temporal), 2 for a usage or configuration
// error (unknown subcommand or flag, bad value, port taken).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *runEnv, args []string) error
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"dev", "run everything on this machine: Temporal, its UI, the worker, the portal", runDev},
	{"worker", "run the Temporal worker against a Temporal cluster", runWorker},
	{"api", "serve the portal, staff pages and JSON API against a Temporal cluster", runAPI},
	{"staff add", "create a Setera staff account", runStaffAdd},
	{"bench", "measure the presence sync under load against the simulators", runBench},
}

// runEnv is what a subcommand gets from the process: its output streams,
// its environment and its standard input. Tests replace all of them.
type runEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &runEnv{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}

// run picks the subcommand, runs it and turns its error into an exit code.
// A run that ends because ctx was cancelled (SIGINT, SIGTERM) and stopped
// cleanly returns exitOK.
func run(ctx context.Context, args []string, env *runEnv) int {
	if len(args) == 0 {
		usage(env.stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		return exitOK
	}

	cmd, rest, ok := findCommand(args)
	if !ok {
		fmt.Fprintf(env.stderr, "onesync: unknown command %q\n\n", args[0])
		usage(env.stderr)
		return exitUsage
	}

	err := cmd.run(ctx, env, rest)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, new(*usageError)):
		// The flag package has printed the problem and the usage already.
		return exitUsage
	case errors.As(err, new(*configError)):
		fmt.Fprintf(env.stderr, "onesync %s: %v\n", cmd.name, err)
		return exitUsage
	default:
		fmt.Fprintf(env.stderr, "onesync %s: %v\n", cmd.name, err)
		return exitFailed
	}
}

// findCommand matches the longest subcommand name at the start of args.
func findCommand(args []string) (command, []string, bool) {
	var best command
	var bestWords int
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(words) > len(args) || len(words) <= bestWords {
			continue
		}
		match := true
		for i, w := range words {
			if args[i] != w {
				match = false
				break
			}
		}
		if match {
			best, bestWords = c, len(words)
		}
	}
	if bestWords == 0 {
		return command{}, nil, false
	}
	return best, args[bestWords:], true
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: onesync <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'onesync <command> -h' for the flags of a command. Every flag can also")
	fmt.Fprintln(w, "be set by an ONESYNC_* environment variable, for example --log-level by")
	fmt.Fprintln(w, "ONESYNC_LOG_LEVEL; a flag wins over its variable.")
}

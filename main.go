// Command signpost is the single entry point of the Signpost federated record
// locator. It is a thin table of subcommands; each subcommand lives in the
// package that owns its part of the architecture (see docs/DESIGN.md) and
// has the signature of [command.run], so that it can be tested without a
// process.
//
// Usage:
//
//	signpost <command> [flags] [args]
//	signpost help
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/node/admin"
	"github.com/signpost-federation/signpost/node/edge"
	"github.com/signpost-federation/signpost/node/stack"
	"github.com/signpost-federation/signpost/sim"
	"github.com/signpost-federation/signpost/wasm"
)

// command is one row of the subcommand table. run receives the arguments after
// the command's name and returns the process exit code: 0 success, 1 a
// failure the command reports, 2 a usage error.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands is the table of subcommands, in the order `signpost help` lists them.
var commands = []command{
	{name: "demo", summary: "run a local federation of four agencies with synthetic records (try this first)", run: stack.DemoMain},
	{name: "node", summary: "run one agency's node (node --config FILE), write a config (node init), import records (node import)", run: stack.NodeMain},
	{name: "federation", summary: "federation authority (init, keygen, enrol, revoke, sign-key), token keys through a node (dkg, key-records), a node's federation layer alone (run)", run: federationMain},
	{name: "user", summary: "manage a node's user accounts and API tokens", run: admin.UserMain},
	{name: "audit", summary: "verify a node's audit log, print its tree head and RFC 9162 proofs, find a subject's events", run: admin.AuditMain},
	{name: "locate", summary: "find which agencies hold records for many NHS numbers through a node; the numbers never leave this machine", run: edge.LocateMain},
	{name: "ident", summary: "validate identifiers (NHS number, CHI, H&C, UPN, ULN) through the wasm module; generate synthetic test numbers", run: wasm.IdentMain},
	{name: "sim", summary: "simulate a federation of many nodes in virtual time (real protocol code)", run: sim.SimMain},
}

// federationMain is `signpost federation`: the authority's tools are the
// federation package's; the operator's token-key commands, which talk to a
// running node's API, are node/admin's.
func federationMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "dkg" || args[0] == "key-records") {
		return admin.KeysMain(ctx, args, stdin, stdout, stderr)
	}
	return federation.FederationMain(ctx, args, stdin, stdout, stderr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := doMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// doMain is separated from main so that the dispatch can be unit tested.
func doMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "signpost: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Signpost is a federated record locator: it tells a practitioner which other")
	fmt.Fprintln(w, "agencies hold a record for a person, without a central index of people.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: signpost <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'signpost <command> -h' for a command's flags.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands that run the wasm module (ident, locate, node, demo) keep its compiled code in")
	fmt.Fprintln(w, "the user cache directory, so that only their first run compiles it; -"+wasm.CacheFlag+" DIR")
	fmt.Fprintln(w, "or $"+wasm.CacheEnv+"=DIR moves it, \""+wasm.CacheOff+"\" compiles in memory every run.")
}

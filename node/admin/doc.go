// Package admin holds the node's administrative subcommands, `signpost user`
// and `signpost audit`, as functions the root command table calls. They work
// on a node's data directory directly (users.json, audit.log and its key), so
// they need no running node: user changes are picked up by a running node
// when the file changes, and audit verification is deliberately independent
// of the node that wrote the log.
//
// Data enters from flags and, for passwords, standard input (never a flag:
// flags show in process lists and shell history); results go to stdout, and
// diagnostics to stderr. Exit codes: 0 success, 1 failure (for `audit
// verify`, a tampered log), 2 usage.
package admin

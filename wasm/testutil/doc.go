// Package testutil owns the helpers that the module's tests share, so that
// each exists once:
//
//   - [Eventually] waits for a condition with a deadline and fails with the
//     condition's last error (serf's testutil/retry, in one function):
//     tests wait for gossip, replication or a listener with it, never with a
//     bare sleep.
//   - [Seed] gives a randomised test its seed: -seed N or SIGNPOST_SEED=N
//     replays one, otherwise a fresh one is drawn; on failure the exact
//     replay command is printed.
//   - [Golden] compares output with a file under testdata; the one -update
//     flag rewrites the files instead.
//   - [VerifyNoLeaks] and [FindLeaks] are the package-wide goroutine-leak
//     check (go.uber.org/goleak) that every package whose code or tests
//     start goroutines runs from its TestMain.
//
// It lives under wasm because wasm is the module's bottom layer: every
// package may import wasm and its sub-packages, so every package's tests
// may import this one without an upward or cyclic import. It imports
// nothing from the module itself, and only _test.go files import it.
//
// Importing it registers the -seed and -update flags in the test binary.
package testutil

//go:build race

package testutil

// RaceEnabled reports whether the tests run under the race detector, which
// slows CPU-bound work 5–10×: volume tests (millions of comparisons) run a
// smaller sample there, since that pass looks for data races, and the
// plain `go test ./...` run keeps the full volume.
const RaceEnabled = true

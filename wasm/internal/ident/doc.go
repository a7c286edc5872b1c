// Package ident validates, normalises and formats the identifier schemes
// Signpost accepts: the NHS number and, behind the same [Scheme] interface,
// Scotland's CHI number, Northern Ireland's Health and Care (H&C) number, the
// Unique Pupil Number (UPN) and the Unique Learner Number (ULN).
//
// This package is the single implementation of that logic. It is compiled
// into the WebAssembly guest (wasm/guest), which is what browsers, the node
// and command-line clients run; it is also compiled natively only so that
// tests and benchmarks can compare the module against it. Nothing outside
// the wasm tree may import it to validate numbers in production.
//
// Data enters as one untrusted string per call and leaves as a [Result]:
// either the canonical form (digits, or upper-case characters for the UPN),
// the display form and advisory range information, or a stable
// machine-readable [Code] with a human sentence. Invariants:
//
//   - Input is forgiving about presentation (spaces, tabs, no-break spaces,
//     hyphens and dashes anywhere, so 3-3-4 grouping is accepted) and strict
//     about content: only ASCII digits count; digits of other scripts are
//     refused with their own code rather than silently converted.
//   - A Result never contains more of the input than its Input field: reasons
//     mention counts and check digits, never the number itself, so a Reason
//     may be logged.
//   - Validation is a pure function: no allocation beyond the Result's strings,
//     no global state, safe for concurrent use.
//   - Ranges (which nation issued a number) are advisory and never make a
//     number invalid, except for H&C, whose definition is its range.
package ident

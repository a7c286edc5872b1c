// Package token is the client half of Signpost's token protocol and the key
// derivation that follows it. Like package ident it is compiled into the
// WebAssembly guest, which is the production path; it is compiled natively
// for tests, benchmarks and the issuer's reference checks.
//
// A legacy single-key token is RFC 9497 POPRF (suite ristretto255-SHA512,
// circl's oprf package) of input = scheme FHIR URI + "|" + canonical
// identifier, with the public info "signpost/v1|" + purpose + "|" + epoch. The flow is split into
// two stateless steps so that it works across any boundary (wasm ABI, a
// browser page, a network hop):
//
//   - [Blind] draws a random blind per input from the reader it is given and
//     returns the serialised blinds (secret; they stay with the caller) and
//     blinded elements (sent to the issuer).
//   - [Finalize] takes the inputs, blinds, the issuer's evaluated elements and
//     its batch DLEQ proof, verifies the proof against the issuer's public key
//     tweaked by the info, and unblinds and hashes to the tokens.
//
// The threshold token function (threshold.go) replaces the POPRF info by a
// separate key per (purpose, epoch), Shamir-shared among n issuers so that
// any t evaluate and fewer learn nothing of it. A token is then RFC 9497's
// VOPRF-mode output for that key k (the info is gone):
//
//   - [BlindVerifiable] blinds in VOPRF mode, as [Blind] does in POPRF mode.
//   - Each issuer evaluates with its share k_i (circl's VOPRF server: Z_i =
//     k_i·B and one batch DLEQ proof against its public share K_i); the
//     issuer half lives natively in package wasm.
//   - [Combine] checks the [KeySet] (t, every K_i, the group key K, all on
//     one polynomial), verifies partials in ascending issuer index until t
//     have verified (a bad one is skipped, fewer than t valid is
//     [ErrTooFewPartials]), combines them with Lagrange coefficients at 0
//     into k·B and finalises with circl's client. Tests prove the result
//     equals circl's own VOPRF output for k, for every t-subset.
//
// Package tokentest deals keys for tests only; real keys come from the
// issuers' distributed key generation and no machine holds k.
//
// [DeriveKeys] turns a token into the 16-byte lookup key and the 32-byte seal
// key with HKDF-SHA256 (empty salt, distinct info labels).
//
// Every decoder here bounds its input; errors never include inputs, blinds or
// tokens.
package token

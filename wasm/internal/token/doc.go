// Package token is the client half of Signpost's token protocol and the key
// derivation that follows it. Like package ident it is compiled into the
// WebAssembly guest, which is the production path; it is compiled natively
// for tests, benchmarks and the issuer's reference checks.
//
// A token is RFC 9497 POPRF (suite ristretto255-SHA512, circl's oprf
// package) of input = scheme FHIR URI + "|" + canonical identifier, with the
// public info "signpost/v1|" + purpose + "|" + epoch. The flow is split into
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
// [DeriveKeys] turns a token into the 16-byte lookup key and the 32-byte seal
// key with HKDF-SHA256 (empty salt, distinct info labels).
//
// Every decoder here bounds its input; errors never include inputs, blinds or
// tokens.
package token

// Package abi defines the byte-level interface between a host (Go through
// wazero, or a browser page) and the Signpost WebAssembly module, and holds
// the module's request handler so that it can be tested and fuzzed natively.
//
// # ABI version 1
//
// The module (GOOS=wasip1, -buildmode=c-shared) exports, besides WASI's
// _initialize which the host must call once after instantiation:
//
//	signpost_abi_version() i32           returns [Version]
//	signpost_alloc(size i32) i32         returns the address of the instance's
//	                                     request buffer, grown to at least size
//	                                     bytes, or 0 if size is negative or
//	                                     above [MaxMessage]
//	signpost_call(op i32, size i32) i64  handles the request in the first size
//	                                     bytes of the request buffer; returns
//	                                     address<<32 | length of the response
//
// A host writes the request into linear memory at the address that
// signpost_alloc returned, calls signpost_call, and copies the response out
// before its next call on the same instance (the response buffer is reused).
// An instance is single-threaded: one call at a time.
//
// A response is one status byte followed by a payload. Status [StatusOK]: the
// payload is a list (below). Any other status: the payload is a short UTF-8
// message meant for people, which never contains an identifier, token, blind
// or key. Bad calls (malformed lists, unknown ops, wrong sizes, invalid
// numbers, bad proofs) are reported this way; a Go panic inside the module is
// recovered and reported as [StatusInternal], so no call traps the instance
// or affects later calls.
//
// A list is uvarint(count) followed by count items, each uvarint(length) and
// length bytes. Decoders refuse trailing bytes, counts above [MaxItems] and
// lengths beyond the message.
//
// Operations (request list → response list); n is the batch size:
//
//	OpValidate    [scheme, input×n]         → [system, (flags, normalized, formatted, code, reason, range)×n]
//	                                          flags is "1" when valid, "" otherwise; n ≤ MaxItems
//	OpBlind       [scheme, number×n]        → [(blind, blinded)×n]; n ≤ 4096; every number must be valid
//	OpFinalize    [scheme, purpose, epoch, publicKey, proof, (number, blind, evaluated)×n]
//	                                        → [(token, lookupKey, sealKey)×n]
//	OpDeriveKeys  [token×n]                 → [(lookupKey, sealKey)×n]
//	OpSchemes     []                        → [(name, system)×k]
//
// epoch is a decimal uint32 without leading zeros; purpose is lowercase
// ASCII words joined by hyphens. Tokens are POPRF outputs over
// system + "|" + canonical number with info "signpost/v1|purpose|epoch".
package abi

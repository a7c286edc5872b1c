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
//	OpValidateCompact [scheme, input×n]     → [system, packed]; the same results as OpValidate in one
//	                                          item: per input flags(1 byte, bit 0 valid), code(1 byte: 0
//	                                          none, else 1 + its index in the module's code list), then
//	                                          normalized, formatted and range each behind a 1-byte length,
//	                                          then reason behind a uvarint length
//	OpBlind       [scheme, number×n]        → [(blind, blinded)×n]; n ≤ 4096; every number must be valid
//	OpFinalize    [scheme, purpose, epoch, publicKey, proof, (number, blind, evaluated)×n]
//	                                        → [(token, lookupKey, sealKey)×n]
//	OpDeriveKeys  [token×n]                 → [(lookupKey, sealKey)×n]
//	OpSchemes     []                        → [(name, system)×k]
//	OpOpenEntries [sealKey, members, entry×n]
//	                                        → [(status, nodeId, category, registeredAt, flags)×n]
//	                                          n ≤ MaxEntries (4096)
//	OpBlindVerifiable [scheme, number×n]    → [(blind, blinded)×n]; as OpBlind, in VOPRF mode
//	OpCombine     [scheme, keySet, partials, (number, blind)×n]
//	                                        → [(token, lookupKey, sealKey)×n]
//	OpCombineVerified                       as OpCombine
//	OpCombineBlinded [scheme, keySet, partials, (number, blind, blinded)×n]
//	                                        → as OpCombine
//
// OpOpenEntries opens entries the way a reader must (package wasm/sealed,
// the one implementation of the sealed holder identity, which locator
// imports natively): sealKey is 32 bytes; members is one item holding a
// nested list of (nodeId, publicKey) pairs, the federation's members as the
// node's lookup answer lists them; each entry is a canonical locator entry
// encoding. Per entry, status is one byte: [EntryOK], [EntryMalformed] (the
// encoding does not parse), [EntrySealBroken] (wrong seal key, tampered),
// [EntryUnknownHolder] (named node not among members) or
// [EntryHolderSignature] (the holder node's signature does not verify).
// registeredAt is 8 bytes, big-endian Unix seconds; flags holds "1" for a
// tombstone and "s" for a shielded entry ("1s" for both), whose nodeId is
// the broker's and whose category item is the inner blob sealed to the
// broker (the holder's identity, which the module cannot open; a contact
// request through the broker carries it there). On any status but EntryOK the other four items are empty; a
// reader drops such an entry and never shows it. The entry's own signature
// (by its entry key) is not checked here: the node's store checked it when
// it accepted the entry, and the browser reads entries from its own node.
// The op was added to version 1 without changing the version: it is
// additive, and a module without it answers [StatusUnknownOp].
//
// OpValidateCompact, also additive to version 1, is what the Go host uses
// for batches: six list items per input cost the host more to decode than
// the module spends checking the number, and one packed item halves the
// host's share. The code index refers to the code list both sides are built
// from (package ident's AllCodes), which is append-only; the browser loader
// keeps OpValidate, whose codes are spelled out.
//
// OpBlindVerifiable and OpCombine, additive to version 1, are the client of
// the threshold token function (package token, threshold.go). keySet is one
// item holding a nested list [purpose, epoch, t, groupKey, (index, key)×m]:
// t and each issuer's Shamir index in decimal, each key its 32-byte public
// share K_i ([AppendKeySet], [DecodeKeySet]). partials is one item holding
// a nested list with one item per issuer answer, itself a nested list
// [index, proof, evaluated×n] ([AppendPartials], [DecodePartials]); at most
// token.MaxIssuers of each. OpCombine checks the key set
// ([StatusKeySet]: t outside 1..m, a repeated index, a bad key, shares not on
// one polynomial with the group key) and the purpose, re-derives the
// blinded elements from the numbers and blinds, verifies partials in
// ascending index until t verify (a bad one is skipped), combines,
// finalises and derives keys. Fewer than t valid partials answer
// [StatusTooFewPartials] with a message saying how many verified of how
// many were needed. OpCombineVerified takes OpCombine's request and gives
// its answer for partials the caller verified already (the node, which
// checks each issuer's answer as it arrives): it checks no proof and does
// not re-derive the blinded elements, so an unverified partial gives a
// wrong token, not an error. OpCombineBlinded is OpCombine given each
// number's blinded element, as OpBlindVerifiable returned it: the proofs
// are checked against these instead of elements derived again (a hash to
// the group and a scalar multiplication a number). Browsers and edge
// clients use OpCombine or OpCombineBlinded.
//
// epoch is a decimal uint32 without leading zeros; purpose is lowercase
// ASCII words joined by hyphens. Legacy tokens (OpBlind, OpFinalize) are
// POPRF outputs over system + "|" + canonical number with info
// "signpost/v1|purpose|epoch"; threshold tokens (OpBlindVerifiable,
// OpCombine) are VOPRF outputs over the same input for the key of the
// (purpose, epoch).
package abi

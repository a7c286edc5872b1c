// Package wasm is Signpost's single source of identifier and token logic and
// the Go host that runs it.
//
// The logic (packages internal/ident and internal/token) is compiled into one
// WebAssembly module, signpost.wasm (GOOS=wasip1, -buildmode=c-shared,
// //go:wasmexport; source in guest/, built by build.go), which is committed
// and embedded here. The same file is served to browsers (see [WebFS] and
// web/signpost.js) and run by Go through wazero ([Runtime]), so a number is
// validated and blinded by exactly the same code wherever it is typed. A test
// rebuilds the module with the pinned toolchain and fails if the committed
// bytes differ.
//
// Data flow. An identifier enters as a string and leaves [Runtime.Validate]
// as a [Result] (canonical form, display form, advisory range, or a stable
// reason code). For tokens, [Runtime.Blind] returns blinds (secret, kept by
// the caller) and blinded elements (sent to an [Evaluator], normally the
// issuer node); [Runtime.Finalize] verifies the issuer's proof and returns
// [Token]s with their derived lookup and seal keys. [Runtime.Tokens] does
// the whole round trip. The issuer's half, [Issuer], is native Go (circl).
// That is the legacy single-key epoch. The threshold token function, which
// replaces it, needs no machine to hold the key: [ShareIssuer] evaluates
// with one issuer's Shamir share of the (purpose, epoch) key and proves it;
// [VerifyPartial] lets a node check an issuer's answer; the client blinds
// ([Runtime.BlindThreshold]) and verifies and combines t partials
// ([Runtime.Combine]; [Runtime.ThresholdTokens] with a
// [ThresholdEvaluator] does the round trip) inside the module, or natively
// with the same source ([NativeClient]). Keys and partials are described by
// [KeySet] and [Partial].
// A reader with a seal key opens entries with [Runtime.OpenEntries] (in a
// browser, the loader's openEntries): the sealed part is opened and the
// holder node's signature checked against the members given, by package
// sealed (wasm/sealed), the one implementation of the sealed holder
// identity, which package locator also imports natively.
//
// Invariants: raw identifiers, tokens, blinds and keys never appear in errors
// or logs; every module call is bounded in size and recovers from panics in
// the guest, so a bad call returns an error and never poisons the instance;
// blinding uses crypto/rand (wazero's default random source is deterministic).
//
// The ABI between host and module is documented in internal/abi.
package wasm

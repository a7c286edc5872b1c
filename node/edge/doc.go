// Package edge is `signpost locate`, the batch edge client: the
// command-line twin of the practitioner page (package node/web), for a case
// system or an analyst with a file of NHS numbers.
//
// It runs where the numbers are, never on the node. Each input line is
// validated, blinded and (once t issuers' partial evaluations come back)
// combined into a token inside the wasm module under wazero, exactly as the
// page does in a browser; only blinded elements and lookup keys travel, to
// the node's POST /v1/tokens/evaluate (in batches of up to the node's
// max_batch) and POST /v1/lookup (one key per call, run concurrently with a
// bound). The sealed entries a lookup returns are opened locally, in the
// module, with the token's seal key, and checked against the federation's
// members; the asking node itself is left out, as POST /v1/locate leaves it
// out. Output is one line per input, in input order.
//
// Where it lives: under node/ because it speaks the node's HTTP API and
// shares the node's one home for its concepts (the error codes of
// node/internal/httpx, the category rule of node/internal/records), as the
// page (node/web) does; outside the node core, which must not import it
// (nor the wasm module it runs: TestCoreImportsNoOtherPart). Nothing but the
// root command imports it.
//
// Data in and out: numbers from arguments or stdin, an API token from
// $SIGNPOST_TOKEN or a file that only its owner may read; results on
// stdout; progress and warnings on stderr (never a number). A resume file
// (--resume) records finished lines by line number and a short keyed hash
// of the line, never the number itself.
package edge

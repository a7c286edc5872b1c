// Package audit is the node's tamper-evident audit log: an append-only file
// of JSON lines, one per audited operation (evaluations, lookups, contact
// requests on both sides, watches, record changes, objections, sign-ins), in
// the manner of a Certificate Transparency log (RFC 9162).
//
// # Format
//
// Line k (1-based) of the file is
//
//	{"i":k-1,"event":{...},"root":"<hex>","sig":"<base64>"}
//
// where event is the [Event] as compact JSON, root is the RFC 9162 Merkle
// Tree Hash of the first k events (leaf hash SHA-256(0x00 ‖ event bytes),
// interior SHA-256(0x01 ‖ left ‖ right)), and sig, present when the log has
// a signer, is the node's Ed25519 signature over the tree head's
// [TreeHead.Checkpoint]. There is one canonical encoding of each line; the
// reader refuses any other.
//
// # Invariants
//
//   - Append returns only after the line is written and fsynced: an
//     acknowledged event is on disk. Concurrent appends are group-committed
//     (one write and one fsync for the lines that arrive while the previous
//     fsync runs), in index order. A crash can leave a torn final line,
//     never acknowledged, which Open cuts off. After a failed write or sync
//     the Log refuses appends ([ErrBroken]) until reopened.
//   - Every line commits to every line before it. [Verify] recomputes the
//     tree and names the first line whose index or root disagrees: an edited
//     field ([ErrTampered]), a removed, inserted or swapped line
//     ([ErrOutOfOrder]), a torn or cut-short log ([ErrTruncated]), and with
//     a public key any line not signed by it ([ErrTampered]). [Open] with a
//     Signer checks every line's signature under that key, and refuses the
//     log otherwise. Lines cut from the end leave a shorter but
//     self-consistent log; that is caught by comparing against tree heads
//     kept elsewhere ([VerifyOptions] Trusted and Heads): the head file the
//     log saves beside itself ([HeadFileName], checked by Open too), and
//     the heads the other nodes witness ([Witness]).
//   - Witnessing (witness.go): a node offers its signed head with an RFC
//     9162 consistency proof; a [Witness] keeps the latest head per node
//     that extends the one before, and keeps a refused one with it as
//     evidence of a fork. A head carries size, root and signature only.
//   - [InclusionProof] and [ConsistencyProof] give RFC 9162 proofs, so a
//     witness holding an old tree head can check that the current log
//     extends it, and an auditor can prove one event is in a signed head.
//   - No event holds an NHS number, token, lookup key, seal key or key.
//
// # Who looked this person up?
//
// Events name people only by [SubjectRef]: HMAC-SHA256 under a node-local
// audit key (32 random bytes in a 0600 file in the data directory) of the
// lookup key involved, cut to 16 bytes. The node calls [Log.Ref] for each
// lookup key an operation touches. To answer a subject-access request from an
// NHS number, the node (in package node) computes the number's lookup key for
// each purpose and key epoch the log spans, through the issuer (that
// evaluation is itself audited), turns them into refs, and calls
// [Log.Subject]. Evaluations carry no subject: the issuer sees only blinded
// elements, by design.
//
// Why a keyed hash of the lookup key, not of the NHS number? There are only
// about 10⁹ NHS numbers, so any hash of one — keyed or not — can be reversed
// by whoever holds the key by trying them all. The lookup key is already a
// purpose-bound oblivious-PRF output that only the federation's issuer can
// compute, with rate limits and its own audit; keying it again with a local
// key means a copy of the log alone reveals nothing, and a copy of the log
// and the audit key still needs the issuer to test each guess.
//
// # Data in and out
//
// Events enter through [Log.Append]; they leave through [Verify] and
// [VerifyWith] (the `signpost audit verify` command), [Log.Subject] and
// [Query] (subject-access requests), and tree heads and proofs for
// witnesses. The log keeps every leaf hash in memory (32 bytes an event) so
// proofs need no second pass over the file.
package audit

// Package locator is Signpost's index: the sealed, signed entries that say
// "some agency holds a record under this lookup key", their merge rule, the
// replicas that store them, and the queries, watches and digests built on
// those replicas.
//
// # Entries
//
// An Entry (see docs/DESIGN.md, "Entries") is built by a Holder or decoded from
// its canonical encoding (DecodeEntry); both fill its caches and the result
// is immutable. The encoding, version 1, is
//
//	format(1)=1 ‖ lookup(16) ‖ entryPub(32) ‖ version(8) ‖ expires(8, Unix s)
//	‖ flags(1, bit 0 = deleted) ‖ len(sealed)(2) ‖ sealed ‖ sig(64)
//
// with big-endian integers; sig is Ed25519 by entryPub over
// "signpost/locator/entry/v1\x00" ‖ everything before sig. The id is
// SHA-256("signpost/locator/id/v1\x00" ‖ lookup ‖ entryPub): a domain-separated
// variant of hash(lookup ‖ entryPub), whose bits are uniform.
//
// The entry key is Ed25519 from HKDF-SHA256(holder secret, info =
// "signpost/locator/entry-key/v1\x00" ‖ lookup): stable for the holder,
// unlinkable to it without the secret. The sealed part is nonce(24) ‖
// XChaCha20-Poly1305(sealKey, payload, ad = lookup ‖ entryPub) where payload
// is version(1)=1 ‖ len ‖ node id ‖ len ‖ category ‖ registered-at(8) ‖ the
// holder node's Ed25519 signature over "signpost/locator/holder/v1\x00" ‖
// lookup ‖ entryPub ‖ the same identity fields. Random nonces are safe with
// XChaCha's 192 bits. A reader opens it with Entry.Open and believes it only
// if the node signature verifies against membership. The sealed part's
// format is implemented once, in package wasm/sealed, which the browser's
// WebAssembly module and this package share (Holder seals and Entry.Open
// opens through it; TestPublishBytesStable pins the bytes).
//
// # Merge
//
// A Store is a last-writer-wins register per id. Compare orders writes:
// higher version, then tombstone over live, then the greater encoding — a
// total order, so merge is commutative, associative and idempotent. Apply
// accepts a write only if it is newer than the stored one, within the
// Policy's size and retention bounds, unexpired, and correctly signed by
// the entry key that is bound into its id (so only that key's owner can
// write it). Everything else is rejected with a Reason, counted in Counters
// and never stored; undecodable encodings and entries that fail to Open are
// counted through NoteRejected. Expire drops entries (tombstones too) at
// their expiry; replicas that Expire at the same time hold the same set.
//
// # Digests
//
// Every store keeps a fixed-fanout (16) hash tree over id prefixes of depth
// Policy.DigestDepth: a bucket's value is the XOR of the DigestHash of its
// entries plus their count, updated in O(depth) per write. Anti-entropy
// (package federation/protocol) compares buckets top-down and then trades
// Stamps of only the buckets that differ.
//
// # Data in and out
//
// Data enters by Holder (local writes) and DecodeEntry (from peers) and goes
// through Store.Apply/ApplyBatch; it leaves by Get, Lookup, Range, Stamps
// and Watch. Two stores: MemStore (tests, sim) and BoltStore (an embedded
// bbolt file; an acknowledged write is fsynced). All stores are safe for
// concurrent use; callbacks (Range) must not call back into the store.
//
// # Changes from the first sketch of this API
//
// Store.Lookup takes the time (Lookup(now, key)) because excluding expired
// entries needs a clock and sim runs in virtual time. Entry.Expires is Unix
// seconds (ExpiresAt gives a time.Time). Rejections are Outcome.Result ==
// Rejected with a Reason; a stale version is Rejected with ReasonStale.
// LookupOpen is the reader's path that opens, verifies, drops and counts.
// NewCollector exports a store's Counters and Len to Prometheus
// (signpost_locator_*, rejections by Reason).
//
// Nothing in this package logs, and no error message contains a seal key, a
// token or a private key.
package locator

// Package sealed is the one implementation of the sealed holder identity:
// compiled into the WebAssembly module for browsers (and for Go hosts that
// run the module through wazero), and imported natively by package locator,
// which seals with it when a Holder publishes and opens with it in
// Entry.Open. Nothing else may seal, open or parse the sealed part.
//
// # Format
//
// The sealed part of a locator entry is
//
//	nonce(24) ‖ XChaCha20-Poly1305(sealKey, payload, ad = lookup(16) ‖ entryPub(32))
//
// and the payload, version 1, is
//
//	version(1)=1 ‖ len(1) ‖ node id ‖ len(1) ‖ category ‖ registered-at(8, big-endian Unix s)
//	‖ the holder node's Ed25519 signature(64)
//
// The signature is by the holder node's enrolled key over
// "signpost/locator/holder/v1\x00" ‖ lookup ‖ entryPub ‖ len ‖ node id ‖ len ‖
// category ‖ registered-at ([HolderSigned]): it binds the holder's identity
// to this lookup key and this entry key, so a sealed part cannot be moved to
// another entry. Node ids are 1..[MaxNodeIDLen] bytes, categories at most
// [MaxCategoryLen]. Nonces are random (safe with XChaCha's 192 bits).
//
// # Shielded entries
//
// Where being named as a holder can itself harm the person (a sexual-health
// clinic, a refuge), the holder publishes shielded entries. Their payload,
// version 2 ([PayloadShielded]), sealed under the seal key as above, is
//
//	version(1)=2 ‖ len(1) ‖ broker node id ‖ registered-at(8) ‖ inner([InnerSize])
//
// where inner is HPKE (RFC 9180; DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// ChaCha20Poly1305) sealed to the broker node's key, with info
// "signpost/locator/shielded/v1\x00" ‖ lookup ‖ entryPub ‖ len ‖ broker id,
// of the fixed-size plaintext
//
//	len(1) ‖ holder node id, zero-padded to MaxNodeIDLen ‖ len(1) ‖ category,
//	zero-padded to MaxCategoryLen ‖ registered-at(8) ‖ holder signature(64)
//
// with the same holder signature as version 1 ([HolderSigned]). The outer
// part carries no holder id, category or signature, and its length depends
// only on the broker id's. A reader with the seal key learns "shielded,
// brokered by B, since T" and checks that B is a member ([OpenVerify]); it
// cannot check the holder, and says so. Only the broker opens the inner
// blob ([OpenShield]): the info binds it to the entry and to the broker
// named, so it cannot be moved to another entry or relayed through another
// broker. The broker's X25519 key is the Montgomery form of its enrolled
// Ed25519 key ([BrokerPublicKey], [BrokerPrivateKey]), so no new key is
// enrolled or distributed.
//
// # Invariants
//
// [Open] authenticates before it parses; [ParsePayload] is bounded and
// refuses trailing bytes, so a payload has exactly one encoding. [OpenEntry]
// opens and then checks the holder signature against the membership it is
// given; a reader believes an entry only if it returns no error, and drops
// (and counts) it otherwise, never shows it. OpenEntry does NOT check the
// entry's own (outer) signature by the entry key: a store checks that when
// it accepts an entry (locator.Store.Apply), and the browser gets its
// entries from its own node's store. What the browser checks itself is what
// needs the seal key: that the sealed part opens and that the named holder
// node signed it, against the node ids and public keys of the federation's
// members that the node's lookup answer carries.
//
// # Data in and out
//
// In: a seal key (a secret: it stays where it was derived, in the browser on
// the browser path), the lookup key and entry key an entry is bound to, the
// sealed bytes (or, for [ReadEntry] and [OpenEntry], a canonical locator
// entry encoding) and a function from node id to public key. Out: an
// [Identity] or an [*Error] with a [Reason]. No error text contains a seal
// key, a token or a private key.
//
// The package depends only on the standard library and
// golang.org/x/crypto, so that it compiles for GOOS=wasip1.
package sealed

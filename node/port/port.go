// Package port holds the node's ports: the small interfaces through which
// the node core (package node) reaches the other parts of Signpost (the
// wasm module, the locator, the federation), and the values that cross
// them. It imports only the standard library, so that the adapters in
// node/adapter implement these interfaces without importing the core, and
// the core's tests can run against real adapters without an import cycle.
// Package node re-exports every name here as an alias (node.Keys is
// port.Keys); read the contracts here.
package port

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Keys are what a purpose-bound token yields: the lookup key entries are
// stored under and the seal key that opens them. Secret: never log.
type Keys struct {
	Lookup [16]byte
	Seal   [32]byte
}

// Tokenizer validates NHS numbers and turns them into [Keys] for a purpose.
// Production: the wasm module under wazero, blinding and combining the
// partial evaluations an [Evaluator] returns. Safe for concurrent use.
type Tokenizer interface {
	// Normalize returns the canonical 10 digits, or an error whose message is
	// a reason safe to show (it never echoes the input).
	Normalize(ctx context.Context, input string) (string, error)
	// Keys tokenises canonical numbers for purpose under the purpose's
	// current key, blinding against ev. The node passes its own evaluator
	// (which checks the purpose and reaches the issuers), so the tokenizer
	// needs no reference back to the node.
	Keys(ctx context.Context, ev Evaluator, purpose string, numbers []string) ([]Keys, error)
}

// VerifiedCombiner is a Tokenizer that combines the partials its Evaluator
// returns without checking their proofs again (the node's native
// tokenizer: the node checked them). Given one, the node does not prove its
// own partial evaluation to itself; a tokenizer that checks every proof
// (the module's) gets the proof.
type VerifiedCombiner interface {
	CombinesVerified() bool
}

// KeySet is one token key — a (purpose, epoch) pair — as the federation's
// signed key record describes it: any T of the issuers evaluate together,
// each with its Shamir share; nobody holds the key itself. Public.
type KeySet struct {
	Purpose string
	Epoch   uint32
	T       int
	Issuers []IssuerKey
	// GroupKey is k·G for the shared key k (32 bytes).
	GroupKey []byte
}

// IssuerKey is one issuer of a [KeySet]: its node, its Shamir index and its
// public share K_i = k_i·G (32 bytes), against which its proofs verify.
type IssuerKey struct {
	NodeID      string
	Index       uint16
	PublicShare []byte
}

// Issuer returns the issuer with Shamir index i.
func (ks KeySet) Issuer(i uint16) (IssuerKey, bool) {
	for _, k := range ks.Issuers {
		if k.Index == i {
			return k, true
		}
	}
	return IssuerKey{}, false
}

// Partial is one issuer's evaluation of a batch of blinded elements with its
// share, with one batch proof against its public share.
type Partial struct {
	NodeID    string
	Index     uint16
	Evaluated [][]byte
	Proof     []byte
}

// Evaluator is how a tokenizer reaches the issuers: the node's own, which
// checks the purpose, asks the issuers and returns T partials whose proofs
// it has verified. An implementation must verify them: the node's native
// tokenizer combines them without checking the proofs again (the module's
// tokenizer checks them again, as a browser does). Same shape as the wasm
// package's ThresholdEvaluator so that one value serves both.
type Evaluator interface {
	// KeySet returns the key for purpose at epoch; epoch 0 means the
	// purpose's current key.
	KeySet(ctx context.Context, purpose string, epoch uint32) (KeySet, error)
	// EvaluatePartials evaluates blinded elements under that key.
	EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]Partial, error)
}

// Keyring is the federation's token keys as this node knows them: the
// verified key records, and this node's own shares if it is an issuer.
// Safe for concurrent use.
type Keyring interface {
	// KeySet returns the key for purpose at epoch (0: the current one, the
	// newest adopted), or an error wrapping [ErrNoKey].
	KeySet(purpose string, epoch uint32) (KeySet, error)
	// All returns every adopted key, for operators (GET /v1/federation).
	All() []KeySet
	// Share returns this node's share of that key, nil if it holds none.
	// A share returned must be the one whose public key the key record
	// names for this node (K_i = k_i·G): the node does not check the proofs
	// of its own evaluations.
	Share(purpose string, epoch uint32) Share
	// VerifyPartial checks a partial's proof against its issuer's public
	// share in ks, from public data only, so that the node can reject a bad
	// partial and ask another issuer before the client sees it.
	VerifyPartial(ks KeySet, blinded [][]byte, p Partial) error
}

// Share is this node's share of one key: it evaluates blinded elements and
// proves it did so with the share behind its public share. Secret inside.
type Share interface {
	Index() uint16
	Evaluate(blinded [][]byte) (evaluated [][]byte, proof []byte, err error)
	// EvaluateUnproven is Evaluate without the proof, for this node's own
	// tokens only: a partial that leaves the node carries its proof.
	EvaluateUnproven(blinded [][]byte) (evaluated [][]byte, err error)
}

// ErrNoKey is returned when the federation has no token key for a purpose
// (or not that epoch) yet: a DKG has not been run, or its record has not
// arrived.
var ErrNoKey = errors.New("node: no token key for that purpose")

// IssuersError says that fewer than T issuers gave a valid partial
// evaluation. It wraps [ErrIssuerUnavailable]: tokens cannot be made, while
// lookups of the local replica go on and publishes wait in the outbox.
type IssuersError struct {
	Answered, N, T int
}

func (e *IssuersError) Error() string {
	return fmt.Sprintf("only %d of %d token issuers answered; %d are needed", e.Answered, e.N, e.T)
}

// Unwrap makes errors.Is(err, ErrIssuerUnavailable) hold.
func (e *IssuersError) Unwrap() error { return ErrIssuerUnavailable }

// Holding is an opened and verified entry: an agency that holds a record.
type Holding struct {
	NodeID   string
	Agency   string
	Category string
	Since    time.Time
	// Broker is set, and NodeID, Agency and Category are empty, for a
	// shielded entry: the broker node speaks for a holder whose identity
	// is sealed to it (Shield, which only the broker opens). EntryPub is
	// the entry's key; a contact request through the broker carries both.
	// Nobody but the broker can check who the holder is.
	Broker   string
	EntryPub [32]byte
	Shield   []byte
	// Own is true for this node's own entry (its entry key), which a
	// shielded node cannot tell by NodeID.
	Own bool
}

// Sealed is one entry as it travels: encoded, still sealed.
type Sealed []byte

// IndexEvent is a change in the local replica under a lookup key.
type IndexEvent struct {
	Lookup [16]byte
	Entry  Sealed
	// Deleted is true for a withdrawal (tombstone).
	Deleted bool
}

// Index is the node's view of the federation's locator: its own holder for
// publishing and its local replica for reading. Safe for concurrent use.
type Index interface {
	// Publish creates or updates this node's entry under k.Lookup.
	Publish(ctx context.Context, k Keys, category string, version uint64, registered, expires time.Time) error
	// Withdraw tombstones this node's entry under k.Lookup.
	Withdraw(ctx context.Context, k Keys, version uint64, expires time.Time) error
	// Lookup returns the live sealed entries under lookup.
	Lookup(ctx context.Context, lookup [16]byte) ([]Sealed, error)
	// Find is the reader's whole path in one step: it looks up the live
	// entries under k.Lookup, opens each with k.Seal and verifies its
	// holder against the federation's membership. It returns the holdings
	// that pass and how many entries failed (counted by the replica and
	// left out).
	Find(ctx context.Context, k Keys) (found []Holding, dropped int, err error)
	// Open opens and verifies a sealed entry with a seal key against the
	// federation's membership; entries that fail return an error and are
	// dropped by the caller.
	Open(ctx context.Context, seal [32]byte, e Sealed) (Holding, error)
	// Watch calls fn for every new version stored under keys (tombstones
	// included) until cancel is called; cancel waits for fn to return and
	// is idempotent. fn is called from one goroutine per watch and must not
	// block.
	Watch(keys [][16]byte, fn func(IndexEvent)) (cancel func())
}

// Peers is node-to-node calling over the federation's mutually
// authenticated transport: the issuer forwarding and contact requests.
type Peers interface {
	// Call POSTs a JSON body to path on the peer nodeID and decodes the JSON
	// answer into out.
	Call(ctx context.Context, nodeID, path string, in, out any) error
	// Agency returns the display name of a member, "" if unknown.
	Agency(nodeID string) string
	// Purposes returns what a member's descriptor authorises; nil for a
	// node that is not a member (the core answers 404 unknown_node then).
	Purposes(nodeID string) []string
	// MemberKeys returns this node and every admitted member with its
	// public key, for clients that open entries themselves.
	MemberKeys() []MemberKey
}

// Shields is the broker's side of shielded entries: it opens the holder
// identity sealed to this node (package wasm/sealed's OpenShield with this
// node's own key) and checks the holder's node signature against the
// membership. Safe for concurrent use.
type Shields interface {
	// OpenShield returns the holder node of the shielded entry (lookup,
	// entryPub) whose inner blob is shield, or an error wrapping
	// ErrNotBroker when the blob does not open with this node's key (not
	// this broker's, tampered, or moved) or does not verify.
	OpenShield(lookup [16]byte, entryPub [32]byte, shield []byte) (holder string, err error)
}

// ShieldedEntries is what a shielded node hands its broker to publish (a
// peer call's body): signed entry encodings, at most MaxShieldedEntries.
// The shielded node never pushes them into gossip itself, so no peer can
// tell who published them by who sent them first.
type ShieldedEntries struct {
	Entries [][]byte `json:"entries"`
}

// MaxShieldedEntries bounds one ShieldedEntries call (it fits the peer
// transport's default body limit of 64 KiB).
const MaxShieldedEntries = 48

// EntryRelay is an Index that publishes entries another node signed (a
// broker publishing its shielded nodes' entries): each is verified and
// merged as any received entry, then pushed into the federation.
type EntryRelay interface {
	RelayEntries(ctx context.Context, encodings [][]byte) (applied int, err error)
}

// ErrNotBroker: a shielded entry's sealed holder does not open, or does not
// verify, at this node.
var ErrNotBroker = errors.New("node: the shielded entry does not open at this broker")

// ErrBrokerUnavailable: a shielded node cannot publish because its broker
// is not (or no longer) a member; its record changes wait in the outbox.
var ErrBrokerUnavailable = errors.New("node: broker is not a member")

// ErrIssuerUnavailable is returned when tokens cannot be made because too
// few issuers can be reached: lookups of the local replica go on.
var ErrIssuerUnavailable = errors.New("node: issuer unavailable")

// ErrPurpose is returned for a purpose the caller is not authorised for.
var ErrPurpose = errors.New("node: purpose not authorised")

// MemberKey is a member node as a client needs it to verify entries.
type MemberKey struct {
	NodeID    string `json:"nodeId"`
	Agency    string `json:"agency"`
	Category  string `json:"category"`
	PublicKey string `json:"publicKey"` // base64 Ed25519
}

// PeerError is a peer node's JSON error answer ({"error":{"code","message"}}
// with a non-200 status), as [Peers.Call] returns it.
type PeerError struct {
	Status        int
	Code, Message string
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer answered %d %s", e.Status, e.Code) }

// KeyAdmin is an operator's handle on the federation's token keys: start a
// distributed key generation among chosen issuers, follow it, fetch its
// public result for the authority to sign offline, and adopt the signed
// key records (which then spread to every member). Nothing that crosses it
// is secret: shares stay in the issuers' share directories.
type KeyAdmin interface {
	// StartDKG starts a DKG for (purpose, epoch) among issuers (node ids;
	// Shamir indices 1..n in this order) with threshold t, this node taking
	// part; it returns the session id. The others join when its first
	// message reaches them. An error wrapping ErrKeyAdmin is the
	// operator's to fix (its message says what).
	StartDKG(ctx context.Context, purpose string, epoch uint32, t int, issuers []string) (session string, err error)
	// DKGSessions lists the sessions this node takes or took part in, as
	// JSON-ready values.
	DKGSessions() any
	// DKGResult returns a finished session's public result as the file
	// `signpost federation sign-key` takes; ErrKeyAdmin if it is unknown or
	// not finished.
	DKGResult(session string) ([]byte, error)
	// AdoptKeyRecords adopts the signed key records of a records file's
	// contents and returns how many were new; ErrKeyAdmin for a file that
	// does not verify.
	AdoptKeyRecords(data []byte) (int, error)
	// StartReshare starts moving the key in force for (purpose, epoch) to
	// a new issuer set and threshold (same key, same tokens); this node
	// must be one of its holders. The other holders deal only once their
	// own operators approve the session (ApproveReshare).
	StartReshare(ctx context.Context, purpose string, epoch uint32, t int, issuers []string) (session string, err error)
	// ApproveReshare lets this node deal its share in a reshare session a
	// peer started.
	ApproveReshare(session string) error
	// EraseOldShares removes this node's share files of (purpose, epoch)
	// other than the one the record in force names, once a reshare's record
	// is in force; it returns how many it erased.
	EraseOldShares(purpose string, epoch uint32) (int, error)
}

// ErrKeyAdmin wraps a refused KeyAdmin request: the operator's mistake,
// told back to them (400), not a failure of the node.
var ErrKeyAdmin = errors.New("node: key administration refused")

package node

import "github.com/signpost-federation/signpost/node/port"

// The node is the integrator of the other parts. It talks to them through
// the ports of node/port, re-exported here so that the core and its callers
// say node.Keys, node.Index and so on; the adapters of node/adapter bind
// them to the wasm runtime, the locator and the federation.
type (
	Keys      = port.Keys
	Tokenizer = port.Tokenizer
	// VerifiedCombiner: a Tokenizer that takes the node's partials as
	// verified (the native one).
	VerifiedCombiner = port.VerifiedCombiner
	Evaluator        = port.Evaluator
	Holding          = port.Holding
	Sealed           = port.Sealed
	IndexEvent       = port.IndexEvent
	Index            = port.Index
	// BatchIndex and Publication: an Index that publishes many entries
	// at once (imports and republishing use it when the Index has it).
	BatchIndex  = port.BatchIndex
	Publication = port.Publication
	Peers       = port.Peers
	MemberKey   = port.MemberKey
	PeerError   = port.PeerError
	KeySet      = port.KeySet
	IssuerKey   = port.IssuerKey
	Partial     = port.Partial
	Keyring     = port.Keyring
	Share       = port.Share
	KeyAdmin    = port.KeyAdmin
	// WatchStore keeps stored watches and their notices (watches.go;
	// node/internal/watches).
	WatchStore  = port.WatchStore
	StoredWatch = port.StoredWatch
	WatchNotice = port.WatchNotice
	Shields     = port.Shields
	// ShieldedEntries and EntryRelay: a shielded node's entries, handed to
	// its broker to publish (broker.go).
	ShieldedEntries = port.ShieldedEntries
	EntryRelay      = port.EntryRelay
	// IssuersError says how many issuers answered of how many, and how
	// many are needed (503 issuers_unavailable).
	IssuersError = port.IssuersError
)

// Errors of the ports.
var (
	ErrIssuerUnavailable = port.ErrIssuerUnavailable
	ErrPurpose           = port.ErrPurpose
	ErrNoKey             = port.ErrNoKey
	ErrKeyAdmin          = port.ErrKeyAdmin
	ErrWatchNotFound     = port.ErrWatchNotFound
	ErrWatchLimit        = port.ErrWatchLimit
	ErrWatchKeys         = port.ErrWatchKeys
	ErrBrokerUnavailable = port.ErrBrokerUnavailable
	ErrNotBroker         = port.ErrNotBroker
)

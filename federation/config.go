package federation

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// Config configures an Agent. Build it from DefaultConfig and set the
// identity fields; NewAgent copies, defaults and validates it and never
// modifies the caller's value.
type Config struct {
	// DataDir holds the replica (locator.db, bbolt), the descriptors of
	// every node seen (descriptors.pem, so that NodeKey answers after a
	// restart) and the newest revocation list (revocations.pem). Empty
	// means an in-memory replica and nothing persisted (tests, sim).
	DataDir string

	// GossipBindAddr is the memberlist TCP+UDP address. Default
	// "0.0.0.0:7946"; port 0 picks a free port (see Agent.GossipAddr).
	GossipBindAddr string
	// GossipAdvertiseAddr, if set, is the host:port other nodes use to
	// reach this one by gossip. Default: derived from the bind address.
	GossipAdvertiseAddr string
	// PeerBindAddr is the peer API's TLS listener. Default "0.0.0.0:7947";
	// port 0 picks a free port (see Agent.PeerAddr).
	PeerBindAddr string
	// PeerAdvertiseAddr, if set, is the host:port advertised for the peer
	// API. Default: the bound port at the node's gossip IP.
	PeerAdvertiseAddr string

	// AuthorityKey is the federation authority's public key. Required.
	AuthorityKey ed25519.PublicKey
	// Credentials are this node's signed descriptor and private key.
	// Required; the descriptor must verify under AuthorityKey now.
	Credentials *Credentials
	// GossipKeys are the memberlist encryption keys (32 bytes each), the
	// first being primary. Required.
	GossipKeys [][]byte
	// Revocations is the authority's revocation list to start with; a
	// newer one found in DataDir or received from peers replaces it.
	// Default nil (nothing revoked).
	Revocations *RevocationList
	// KeyRecords are signed key records to start with (a records file the
	// operator was given); newer ones found in DataDir or received from
	// peers replace them per (purpose, epoch). Default none.
	KeyRecords []*KeyRecord

	// ShareDir holds this node's key shares (one owner-only file per
	// (purpose, epoch, session) it holds a share of) and the public results
	// of the DKGs it took part in. Default DataDir/keys; with neither set
	// the node can take no part in a DKG.
	ShareDir string
	// DKGPhaseTimeout is the phase timeout of the DKGs this node starts
	// (each of a session's five rounds ends at the latest this long after
	// the previous one). Default 30s.
	DKGPhaseTimeout time.Duration
	// MaxDKGSessions bounds the DKG sessions a node keeps at once, so that
	// no peer can make it run an unbounded number; finished sessions are
	// forgotten (and DKGStatus no longer knows them) only when a new one
	// needs the room. Default 16.
	MaxDKGSessions int

	// Protocol configures the dissemination engine (Self and Rand are set
	// by the agent; MaxMessageSize is capped at MaxMessageBytes).
	// Default protocol.DefaultConfig().
	Protocol protocol.Config

	// Policy is the locator acceptance policy (federation-wide).
	// Default locator.DefaultPolicy().
	Policy locator.Policy

	// MaxMessageBytes bounds one POST to the peer API (a batch of protocol
	// messages) and one protocol message. Default 8 MiB.
	MaxMessageBytes int
	// SendQueueLen is the per-peer queue of outgoing protocol messages;
	// when full, new messages to that peer are dropped. Default 1024.
	SendQueueLen int
	// InboundQueueLen is the queue of received messages waiting for the
	// engine; when full, the peer API answers 503. Default 4096.
	InboundQueueLen int
	// RequestTimeout bounds every peer API call. Default 10s.
	RequestTimeout time.Duration

	// GossipInterval, ProbeInterval, ProbeTimeout and PushPullInterval
	// override memberlist's LAN defaults (200ms, 1s, 500ms, 30s) when
	// non-zero; tests shorten them.
	GossipInterval, ProbeInterval, ProbeTimeout, PushPullInterval time.Duration

	// ReconnectInterval is how often the agent tries to rejoin members that
	// failed (not those that left): memberlist never probes a node it
	// declared dead, so without this the two sides of a healed partition
	// would stay apart. Default 10s.
	ReconnectInterval time.Duration

	// Events, if non-nil, receives membership events. Sends never block:
	// when the channel is full the event is dropped (and counted in
	// Stats.EventsDropped).
	Events chan<- MemberEvent

	// Logger receives operational logs. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default filled in and no
// identity.
func DefaultConfig() Config {
	return Config{
		GossipBindAddr:    "0.0.0.0:7946",
		PeerBindAddr:      "0.0.0.0:7947",
		Protocol:          protocol.DefaultConfig(),
		Policy:            locator.DefaultPolicy(),
		MaxMessageBytes:   8 << 20,
		SendQueueLen:      1024,
		InboundQueueLen:   4096,
		RequestTimeout:    10 * time.Second,
		ReconnectInterval: 10 * time.Second,
		DKGPhaseTimeout:   30 * time.Second,
		MaxDKGSessions:    16,
		Logger:            slog.Default(),
		Now:               time.Now,
	}
}

// withDefaults returns a copy of c with zero fields defaulted, or every
// validation problem at once.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.GossipBindAddr == "" {
		c.GossipBindAddr = d.GossipBindAddr
	}
	if c.PeerBindAddr == "" {
		c.PeerBindAddr = d.PeerBindAddr
	}
	if c.Policy == (locator.Policy{}) {
		c.Policy = d.Policy
	}
	if c.Protocol.Fanout == 0 && c.Protocol.PushInterval == 0 {
		c.Protocol = d.Protocol
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.SendQueueLen == 0 {
		c.SendQueueLen = d.SendQueueLen
	}
	if c.InboundQueueLen == 0 {
		c.InboundQueueLen = d.InboundQueueLen
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = d.ReconnectInterval
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.DKGPhaseTimeout == 0 {
		c.DKGPhaseTimeout = d.DKGPhaseTimeout
	}
	if c.MaxDKGSessions == 0 {
		c.MaxDKGSessions = d.MaxDKGSessions
	}
	if c.ShareDir == "" && c.DataDir != "" {
		c.ShareDir = filepath.Join(c.DataDir, "keys")
	}
	c.KeyRecords = slices.Clone(c.KeyRecords)
	if c.Now == nil {
		c.Now = d.Now
	}
	c.GossipKeys = slices.Clone(c.GossipKeys)
	var errs []error
	for _, a := range []struct{ name, v string }{
		{"gossip bind address", c.GossipBindAddr}, {"peer bind address", c.PeerBindAddr},
	} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.name, err))
		}
	}
	for _, a := range []struct{ name, v string }{
		{"gossip advertise address", c.GossipAdvertiseAddr}, {"peer advertise address", c.PeerAdvertiseAddr},
	} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.name, err))
		}
	}
	if len(c.AuthorityKey) != ed25519.PublicKeySize {
		errs = append(errs, errors.New("authority key required"))
	}
	if c.Credentials == nil || c.Credentials.Descriptor == nil || len(c.Credentials.PrivateKey) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("credentials (descriptor and private key) required"))
	} else if !c.Credentials.Descriptor.Descriptor.PublicKey.Equal(c.Credentials.PrivateKey.Public()) {
		errs = append(errs, errors.New("private key does not match the descriptor"))
	}
	if len(c.GossipKeys) == 0 {
		errs = append(errs, errors.New("gossip key required"))
	}
	for _, k := range c.GossipKeys {
		if len(k) != GossipKeySize {
			errs = append(errs, fmt.Errorf("gossip keys must be %d bytes", GossipKeySize))
			break
		}
	}
	if c.Revocations != nil && len(c.AuthorityKey) == ed25519.PublicKeySize {
		if err := c.Revocations.Verify(c.AuthorityKey); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.AuthorityKey) == ed25519.PublicKeySize {
		for i, r := range c.KeyRecords {
			if err := r.Verify(c.AuthorityKey); err != nil {
				errs = append(errs, fmt.Errorf("key record %d: %w", i, err))
			}
		}
	}
	if c.DKGPhaseTimeout < time.Millisecond || c.MaxDKGSessions < 1 {
		errs = append(errs, errors.New("DKG phase timeout and session bound must be positive"))
	}
	if c.MaxMessageBytes < 1024 || c.SendQueueLen < 1 || c.InboundQueueLen < 1 || c.RequestTimeout < 0 || c.ReconnectInterval < 0 {
		errs = append(errs, errors.New("message size, queue lengths and timeout must be positive"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("federation: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

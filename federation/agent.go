package federation

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// Errors of the Agent lifecycle.
var (
	// ErrNotStarted: the call needs Start first.
	ErrNotStarted = errors.New("federation: agent not started")
	// ErrShutdown: the agent has been shut down.
	ErrShutdown = errors.New("federation: agent shut down")
	// ErrStarted: the call is only allowed before Start.
	ErrStarted = errors.New("federation: agent already started")
)

const (
	storeFile       = "locator.db"
	descriptorsFile = "descriptors.pem"
)

// Agent is one node's federation layer: memberlist membership, the peer
// API and the dissemination engine driving the node's locator replica.
//
// Its methods are safe for concurrent use. Lifecycle: NewAgent → (HandlePeer)
// → Start → Join … → Leave or Shutdown (both idempotent; either waits for
// every goroutine the agent started and closes the store).
type Agent struct {
	cfg   Config
	log   *slog.Logger
	self  *SignedDescriptor
	store locator.Store
	eng   *protocol.Engine // owned by the loop goroutine after Start
	cert  tls.Certificate

	mux    *http.ServeMux
	client *http.Client

	ml       *memberlist.Memberlist
	peerLn   net.Listener
	srv      *http.Server
	peerAddr string // advertised, resolved

	inbound  chan inboundMsg
	requests chan func(now time.Time)
	// alive carries members that joined or came back to the engine loop
	// (Engine.PeerAlive); membership callbacks never block on it.
	alive chan peerAlive

	started      atomic.Bool
	shutdownCh   chan struct{}
	shutdownCtx  context.Context
	shutdownStop context.CancelFunc
	shutdownOnce sync.Once
	shutdownErr  error
	wg           sync.WaitGroup

	// mu guards the fields in it.
	mu struct {
		sync.Mutex
		members     map[string]*member           // by node id, alive or not
		known       map[string]*SignedDescriptor // best descriptor ever verified, by node id
		revocations *RevocationList
		keyRecords  map[keyRecordID]*KeyRecord
		dkg         map[dkg.SessionID]*dkgRun
		approved    map[dkg.SessionID]bool // reshares this node's operator approved
		senders     map[string]*sender
		closed      bool
	}

	// faults, when set by tests before Start, blocks traffic to and from
	// some nodes (partitions).
	faults *faultSet
	// dkgOutFilter, when set by tests before Start, sees every DKG message
	// this node is about to broadcast; false drops it (a crash mid-DKG).
	dkgOutFilter func(dkg.Message) bool
	// nameOverride, when set by tests before Start, is the memberlist name
	// used instead of the node id (an impostor).
	nameOverride string

	saveMu sync.Mutex // serialises writes of descriptors.pem
	// saveKick asks the saver goroutine to persist the known descriptors
	// (capacity 1: requests coalesce). Membership callbacks run under
	// memberlist's locks, so they never write files themselves.
	saveKick chan struct{}

	// sigMu guards sigOK: encodings of descriptors whose authority
	// signature verified, so that each is checked once, not on every alive
	// message, membership query or peer call.
	sigMu sync.Mutex
	sigOK map[string]struct{}

	stats struct {
		sent, sendFailed, sendDropped, received, inboundDropped, refused, eventsDropped atomic.Uint64
	}
}

type inboundMsg struct {
	from string
	msg  []byte
}

type peerAlive struct {
	peer  protocol.PeerID
	since time.Time
}

// unreachableMargin is how long before memberlist declared a member dead
// it may already have been unreachable (probes, then suspicion): versions
// created from then on are announced to it again when it comes back. Too
// early a bound costs a few stamps; too late a bound leaves versions to
// anti-entropy.
const unreachableMargin = time.Minute

// NewAgent validates cfg, opens the replica and prepares the agent. It
// refuses credentials that do not verify now (ErrDescriptorExpired,
// ErrDescriptorRevoked, ErrDescriptorForged). Nothing listens until Start.
func NewAgent(cfg Config) (*Agent, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: c, log: c.Logger.With("component", "federation", "node", c.Credentials.Descriptor.Descriptor.NodeID)}
	a.self = c.Credentials.Descriptor
	a.mu.members = make(map[string]*member)
	a.mu.known = make(map[string]*SignedDescriptor)
	a.mu.senders = make(map[string]*sender)
	a.mu.revocations = c.Revocations
	a.mu.keyRecords = make(map[keyRecordID]*KeyRecord)
	a.mu.dkg = make(map[dkg.SessionID]*dkgRun)
	for _, r := range c.KeyRecords {
		a.adoptKeyRecordLocked(r)
	}
	a.sigOK = make(map[string]struct{})
	a.saveKick = make(chan struct{}, 1)
	if c.DataDir != "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("federation: data dir: %w", err)
		}
		if rl, err := LoadRevocationList(filepath.Join(c.DataDir, RevocationsFile), c.AuthorityKey); err == nil {
			if a.mu.revocations == nil || rl.Version > a.mu.revocations.Version {
				a.mu.revocations = rl
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		a.loadKnown()
		if rs, err := LoadKeyRecords(filepath.Join(c.DataDir, KeyRecordsFile), c.AuthorityKey); err == nil {
			for _, r := range rs {
				a.adoptKeyRecordLocked(r)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := a.self.Verify(c.AuthorityKey, c.Now(), a.mu.revocations); err != nil {
		return nil, fmt.Errorf("federation: own descriptor: %w", err)
	}
	a.mu.known[a.self.Descriptor.NodeID] = a.self
	if a.cert, err = selfCertificate(c.Credentials); err != nil {
		return nil, err
	}
	if c.DataDir != "" {
		a.store, err = locator.OpenBoltStore(filepath.Join(c.DataDir, storeFile), c.Policy)
	} else {
		a.store, err = locator.NewMemStore(c.Policy)
	}
	if err != nil {
		return nil, fmt.Errorf("federation: open replica: %w", err)
	}
	pcfg := c.Protocol
	var seed [16]byte
	_, _ = crand.Read(seed[:])
	pcfg.Self = protocol.PeerID(a.self.Descriptor.NodeID)
	pcfg.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	if pcfg.MaxMessageSize > c.MaxMessageBytes {
		pcfg.MaxMessageSize = c.MaxMessageBytes
	}
	if a.eng, err = protocol.New(pcfg, a.store, (*engineTransport)(a), (*engineMembership)(a)); err != nil {
		a.store.Close()
		return nil, fmt.Errorf("federation: protocol: %w", err)
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("POST "+PeerMessagesPath, a.handleMessages)
	a.mux.HandleFunc("POST "+PeerRevocationsPath, a.handleRevocations)
	a.mux.HandleFunc("GET "+PeerRevocationsPath, a.serveRevocations)
	a.mux.HandleFunc("POST "+PeerKeyRecordsPath, a.handleKeyRecord)
	a.mux.HandleFunc("POST "+PeerDKGPath, a.handleDKG)
	a.inbound = make(chan inboundMsg, c.InboundQueueLen)
	a.requests = make(chan func(time.Time))
	a.alive = make(chan peerAlive, c.InboundQueueLen)
	a.shutdownCh = make(chan struct{})
	a.shutdownCtx, a.shutdownStop = context.WithCancel(context.Background())
	a.client = a.newPeerClient()
	return a, nil
}

// HandlePeer registers h on the peer API (mutual TLS; use PeerFromContext
// for the caller) under pattern, in net/http.ServeMux syntax. Only before
// Start; patterns under /federation/ are reserved.
func (a *Agent) HandlePeer(pattern string, h http.Handler) error {
	if a.started.Load() {
		return ErrStarted
	}
	if _, path, _ := strings.Cut(pattern, "/"); strings.HasPrefix("/"+path, "/federation/") || !strings.Contains(pattern, "/") {
		return fmt.Errorf("federation: peer handler pattern %q: must be a path outside /federation/", pattern)
	}
	a.mux.Handle(pattern, h)
	return nil
}

// Start binds the peer API and memberlist, and starts the engine loop. ctx
// bounds the start-up only.
func (a *Agent) Start(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	if a.peerLn, err = net.Listen("tcp", a.cfg.PeerBindAddr); err != nil {
		return fmt.Errorf("federation: peer listener: %w", err)
	}
	advertised := a.cfg.PeerAdvertiseAddr
	if advertised == "" {
		host, port, _ := net.SplitHostPort(a.peerLn.Addr().String())
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			advertised = ":" + port
		} else {
			advertised = net.JoinHostPort(host, port)
		}
	}
	meta := (&nodeMeta{descriptor: a.self.Encode(), peerAddr: advertised}).encode()
	if len(meta) > memberlist.MetaMaxSize {
		a.peerLn.Close()
		return fmt.Errorf("federation: node metadata of %d bytes exceeds %d", len(meta), memberlist.MetaMaxSize)
	}
	a.srv = &http.Server{
		Handler:           a.authenticate(a.mux),
		TLSConfig:         a.serverTLS(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       a.cfg.RequestTimeout,
		WriteTimeout:      a.cfg.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	tlsLn := tls.NewListener(a.peerLn, a.srv.TLSConfig)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.srv.Serve(tlsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("peer API stopped", "err", err)
		}
	}()

	mlc, err := a.memberlistConfig(meta)
	if err == nil {
		a.ml, err = memberlist.Create(mlc)
	}
	if err != nil {
		a.srv.Close()
		a.wg.Wait()
		return fmt.Errorf("federation: memberlist: %w", err)
	}
	a.peerAddr = resolvePeerAddr(advertised, a.ml.LocalNode().Addr)
	a.wg.Add(3)
	go func() {
		defer a.wg.Done()
		a.loop()
	}()
	go func() {
		defer a.wg.Done()
		a.reconnectLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.saveLoop()
	}()
	a.log.Info("federation agent started", "gossip", a.GossipAddr(), "peer", a.peerAddr,
		"federation", FederationID(a.cfg.AuthorityKey))
	return nil
}

func (a *Agent) memberlistConfig(meta []byte) (*memberlist.Config, error) {
	mlc := memberlist.DefaultLANConfig()
	mlc.Name = a.self.Descriptor.NodeID
	if a.nameOverride != "" {
		mlc.Name = a.nameOverride
	}
	host, portStr, _ := net.SplitHostPort(a.cfg.GossipBindAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip bind port: %w", err)
	}
	logger := slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{host}, BindPort: port, Logger: logger,
		MetricLabels: a.gossipLabels()})
	if err != nil {
		return nil, err
	}
	mlc.BindAddr, mlc.BindPort = host, nt.GetAutoBindPort()
	mlc.AdvertisePort = mlc.BindPort
	if a.cfg.GossipAdvertiseAddr != "" {
		ah, ap, _ := net.SplitHostPort(a.cfg.GossipAdvertiseAddr)
		mlc.AdvertiseAddr = ah
		if mlc.AdvertisePort, err = strconv.Atoi(ap); err != nil {
			nt.Shutdown()
			return nil, fmt.Errorf("gossip advertise port: %w", err)
		}
	}
	mlc.Transport = nt
	if a.faults != nil {
		mlc.Transport = &faultyTransport{NetTransport: nt, f: a.faults}
	}
	mlc.Label = GossipLabel(a.cfg.AuthorityKey)
	mlc.SecretKey = a.cfg.GossipKeys[0]
	kr, err := memberlist.NewKeyring(a.cfg.GossipKeys, a.cfg.GossipKeys[0])
	if err != nil {
		nt.Shutdown()
		return nil, err
	}
	mlc.Keyring = kr
	mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	mlc.Delegate = &delegate{meta: meta}
	mlc.Alive = &aliveDelegate{a: a, self: mlc.Name}
	mlc.Merge = &mergeDelegate{a: a}
	mlc.Events = &eventDelegate{a: a}
	mlc.Logger = logger
	mlc.MetricLabels = a.gossipLabels() // see Collector
	if a.cfg.GossipInterval > 0 {
		mlc.GossipInterval = a.cfg.GossipInterval
	}
	if a.cfg.ProbeInterval > 0 {
		mlc.ProbeInterval = a.cfg.ProbeInterval
	}
	if a.cfg.ProbeTimeout > 0 {
		mlc.ProbeTimeout = a.cfg.ProbeTimeout
	}
	if a.cfg.PushPullInterval > 0 {
		mlc.PushPullInterval = a.cfg.PushPullInterval
	}
	return mlc, nil
}

// loop is the only goroutine that touches the engine.
func (a *Agent) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := a.cfg.Now()
		wake := a.eng.NextWake()
		var d time.Duration // zero before the first Tick: tick at once
		if !wake.IsZero() {
			d = max(wake.Sub(now), 0)
		}
		timer.Reset(d)
		select {
		case <-a.shutdownCh:
			return
		case in := <-a.inbound:
			if err := a.eng.HandleMessage(a.cfg.Now(), protocol.PeerID(in.from), in.msg); err != nil {
				a.log.Debug("protocol message refused", "peer", in.from, "err", err)
			}
		case req := <-a.requests:
			req(a.cfg.Now())
		case ev := <-a.alive:
			a.eng.PeerAlive(a.cfg.Now(), ev.peer, ev.since)
		case <-timer.C:
			a.eng.Tick(a.cfg.Now())
		}
	}
}

// do runs fn on the engine loop and waits for it.
func (a *Agent) do(ctx context.Context, fn func(now time.Time)) error {
	if !a.started.Load() {
		return ErrNotStarted
	}
	done := make(chan struct{})
	req := func(now time.Time) { fn(now); close(done) }
	select {
	case a.requests <- req:
	case <-a.shutdownCh:
		return ErrShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop runs a request it received before looking at anything else.
	<-done
	return nil
}

// Publish stores e in the local replica and starts spreading it. The
// outcome is the local store's; an Accepted write is durable when Publish
// returns (bolt store).
func (a *Agent) Publish(ctx context.Context, e *locator.Entry) (locator.Outcome, error) {
	var out locator.Outcome
	var perr error
	if err := a.do(ctx, func(now time.Time) { out, perr = a.eng.Publish(now, e) }); err != nil {
		return locator.Outcome{}, err
	}
	return out, perr
}

// PublishBatch is Publish for many entries, applied to the replica in one
// transaction (imports and republishing).
func (a *Agent) PublishBatch(ctx context.Context, es []*locator.Entry) ([]locator.Outcome, error) {
	var out []locator.Outcome
	var perr error
	if err := a.do(ctx, func(now time.Time) { out, perr = a.eng.PublishBatch(now, es) }); err != nil {
		return nil, err
	}
	return out, perr
}

// SyncNow starts an anti-entropy exchange with a random peer at once
// (used after a restart, and by tests).
func (a *Agent) SyncNow(ctx context.Context) error {
	return a.do(ctx, func(time.Time) { a.eng.StartAntiEntropy() })
}

// Store returns the node's replica. It is safe for concurrent reads
// (Lookup, Watch, Get…); writes must go through Publish so that they spread.
func (a *Agent) Store() locator.Store { return a.store }

// Self returns this node's descriptor.
func (a *Agent) Self() Descriptor { return a.self.Descriptor }

// GossipAddr returns the memberlist address other nodes join (host:port),
// or "" before Start.
func (a *Agent) GossipAddr() string {
	if a.ml == nil {
		return ""
	}
	n := a.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// PeerAddr returns the advertised peer API address, or "" before Start.
func (a *Agent) PeerAddr() string { return a.peerAddr }

// Join contacts the given gossip addresses (host:port) and returns how many
// answered. At least one must, or Join fails.
func (a *Agent) Join(addrs []string) (int, error) {
	if !a.started.Load() || a.ml == nil {
		return 0, ErrNotStarted
	}
	n, err := a.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("federation: join: %w", err)
	}
	return n, nil
}

// Members returns every node this node has admitted, alive or not, sorted
// by node id, excluding revoked or expired ones and itself.
func (a *Agent) Members() []Member {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Member
	for id, m := range a.mu.members {
		if id == a.self.Descriptor.NodeID || m.sd.Descriptor.checkValid(now, a.mu.revocations) != nil {
			continue
		}
		out = append(out, Member{Descriptor: m.sd.Descriptor, PeerAddr: m.peerAddr, Alive: m.alive})
	}
	slices.SortFunc(out, func(x, y Member) int { return cmpString(x.NodeID, y.NodeID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// NodeKey implements locator.NodeKeys: the public key of nodeID's newest
// descriptor this node has verified (from membership, or persisted from an
// earlier run), if it is valid now and not revoked. Dead nodes keep their
// keys, so their entries stay readable; revoked and expired ones do not.
func (a *Agent) NodeKey(nodeID string) (ed25519.PublicKey, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sd := a.mu.known[nodeID]
	if sd == nil || sd.Descriptor.checkValid(a.cfg.Now(), a.mu.revocations) != nil {
		return nil, false
	}
	return sd.Descriptor.PublicKey, true
}

var _ locator.NodeKeys = (*Agent)(nil)

// Descriptor returns the newest verified descriptor of nodeID, valid now.
func (a *Agent) Descriptor(nodeID string) (Descriptor, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sd := a.mu.known[nodeID]
	if sd == nil || sd.Descriptor.checkValid(a.cfg.Now(), a.mu.revocations) != nil {
		return Descriptor{}, false
	}
	return sd.Descriptor, true
}

// PeerClient returns the HTTP client for calls to other nodes' peer APIs:
// mutual TLS with this node's certificate, and the answering node must be
// the one named in the URL (see PeerURL).
func (a *Agent) PeerClient() *http.Client { return a.client }

// PeerURL returns the URL of path on nodeID's peer API, for PeerClient.
func (a *Agent) PeerURL(nodeID, path string) string {
	return "https://" + nodeID + path
}

// Revocations returns the revocation list in force (nil: none).
func (a *Agent) Revocations() *RevocationList { return a.revocations() }

func (a *Agent) revocations() *RevocationList {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.revocations
}

// SetRevocations adopts rl if the authority signed it and it is newer than
// the list in force (else ErrRevocationsStale), persists it, and pushes it
// to every alive member, which adopt and forward it in turn. Nodes it
// revokes stop being members, peers and holders at once.
func (a *Agent) SetRevocations(rl *RevocationList) error {
	if err := rl.Verify(a.cfg.AuthorityKey); err != nil {
		return err
	}
	a.mu.Lock()
	if cur := a.mu.revocations; cur != nil && rl.Version <= cur.Version {
		a.mu.Unlock()
		return ErrRevocationsStale
	}
	a.mu.revocations = rl
	var targets []string
	for id, m := range a.mu.members {
		if m.alive && id != a.self.Descriptor.NodeID && !rl.Revoked(id, m.sd.Descriptor.Serial) {
			targets = append(targets, id)
		}
	}
	a.mu.Unlock()
	a.log.Info("revocation list adopted", "version", rl.Version, "entries", len(rl.Entries))
	if a.cfg.DataDir != "" {
		if err := WriteRevocationList(filepath.Join(a.cfg.DataDir, RevocationsFile), rl); err != nil {
			a.log.Warn("persisting revocation list failed", "err", err)
		}
	}
	if a.started.Load() {
		enc := rl.Encode()
		for _, id := range targets {
			if s := a.senderFor(id); s != nil && !s.enqueue(outItem{path: PeerRevocationsPath, body: enc}) {
				a.stats.sendDropped.Add(1)
			}
		}
	}
	return nil
}

// Stats are the agent's counters.
type Stats struct {
	// Members counts admitted members that are alive (self excluded).
	Members int
	// Entries is the replica's size, tombstones included.
	Entries int
	// Sent and SendFailed count protocol messages posted to peers;
	// SendDropped those dropped because a peer's queue was full.
	Sent, SendFailed, SendDropped uint64
	// Received counts protocol messages accepted from peers;
	// InboundDropped those refused because the engine was behind.
	Received, InboundDropped uint64
	// Refused counts nodes and peer calls refused for their descriptor.
	Refused uint64
	// EventsDropped counts membership events not delivered (full channel).
	EventsDropped uint64
	// Protocol are the engine's own counters.
	Protocol protocol.Stats
}

// Stats returns the counters (the engine's are read on its loop).
func (a *Agent) Stats(ctx context.Context) (Stats, error) {
	s := Stats{
		Entries:        a.store.Len(),
		Sent:           a.stats.sent.Load(),
		SendFailed:     a.stats.sendFailed.Load(),
		SendDropped:    a.stats.sendDropped.Load(),
		Received:       a.stats.received.Load(),
		InboundDropped: a.stats.inboundDropped.Load(),
		Refused:        a.stats.refused.Load(),
		EventsDropped:  a.stats.eventsDropped.Load(),
	}
	for _, m := range a.Members() {
		if m.Alive {
			s.Members++
		}
	}
	err := a.do(ctx, func(time.Time) { s.Protocol = a.eng.Stats() })
	return s, err
}

// Leave announces departure to the cluster (waiting up to ctx's deadline,
// default 5s) and then shuts down. Idempotent.
func (a *Agent) Leave(ctx context.Context) error {
	if a.started.Load() && a.ml != nil {
		timeout := 5 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			// memberlist waits forever for a timeout ≤ 0.
			timeout = max(time.Until(dl), time.Millisecond)
		}
		a.mu.Lock()
		closed := a.mu.closed
		a.mu.Unlock()
		if !closed {
			if err := a.ml.Leave(timeout); err != nil {
				a.log.Warn("leave broadcast incomplete", "err", err)
			}
		}
	}
	return a.Shutdown(ctx)
}

// Shutdown stops memberlist, the peer API, the senders and the engine loop,
// waits for all of them, and closes the replica. It succeeds even if ctx is
// already cancelled (the peer API is then closed hard). Idempotent.
func (a *Agent) Shutdown(ctx context.Context) error {
	a.shutdownOnce.Do(func() {
		a.mu.Lock()
		a.mu.closed = true
		a.mu.Unlock()
		close(a.shutdownCh)
		a.shutdownStop()
		var errs []error
		if a.ml != nil {
			if err := a.ml.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		if a.srv != nil {
			if err := a.srv.Shutdown(ctx); err != nil {
				a.srv.Close()
			}
		}
		a.wg.Wait()
		a.client.CloseIdleConnections()
		if err := a.store.Close(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			a.shutdownErr = fmt.Errorf("federation: shutdown: %w", errors.Join(errs...))
		}
	})
	return a.shutdownErr
}

// admit verifies a memberlist node: a descriptor that verifies now, issued
// to the node's memberlist name. Refusals are counted and reported as
// MemberRefused events.
func (a *Agent) admit(n *memberlist.Node) (*SignedDescriptor, error) {
	sd, _, err := decodeNodeMeta(n.Meta)
	if err == nil {
		err = a.verify(sd, a.cfg.Now())
	}
	if err == nil && sd.Descriptor.NodeID != n.Name {
		err = fmt.Errorf("memberlist name %q is not descriptor id %q: %w", n.Name, sd.Descriptor.NodeID, ErrDescriptorForged)
	}
	if err != nil {
		a.stats.refused.Add(1)
		a.emit(MemberEvent{Type: MemberRefused, Member: Member{Descriptor: Descriptor{NodeID: n.Name}}, Err: err})
		return nil, err
	}
	return sd, nil
}

// noteMember updates the member table from a memberlist event.
func (a *Agent) noteMember(n *memberlist.Node, alive bool, typ EventType) {
	sd, adv, err := decodeNodeMeta(n.Meta)
	if err != nil || a.verify(sd, a.cfg.Now()) != nil || sd.Descriptor.NodeID != n.Name {
		return // refused by admit already; memberlist delivers no event for it normally
	}
	m := &member{sd: sd, peerAddr: resolvePeerAddr(adv, n.Addr), alive: alive,
		gossipAddr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		left:       !alive && n.State == memberlist.StateLeft}
	now := a.cfg.Now()
	a.mu.Lock()
	old := a.mu.members[n.Name]
	// A member that comes back alive (or joins) is reported to the
	// engine, with since when it was unreachable; one that goes is only
	// remembered: membership is never a reason to withdraw data.
	back := alive && (old == nil || !old.alive) && n.Name != a.self.Descriptor.NodeID
	var since time.Time
	switch {
	case !alive && (old == nil || old.alive):
		m.downAt = now
	case old != nil:
		m.downAt = old.downAt
	}
	if back && old != nil && !old.downAt.IsZero() {
		since = old.downAt.Add(-unreachableMargin)
	}
	a.mu.members[n.Name] = m
	changed := false
	if old := a.mu.known[n.Name]; old == nil || old.Descriptor.Serial < sd.Descriptor.Serial {
		a.mu.known[n.Name] = sd
		changed = true
	}
	var rl []byte
	var krs [][]byte
	if typ == MemberJoined && n.Name != a.self.Descriptor.NodeID {
		if a.mu.revocations != nil && a.mu.revocations.Version > 1 {
			rl = a.mu.revocations.Encode()
		}
		krs = a.encodedKeyRecordsLocked()
	}
	a.mu.Unlock()
	if changed {
		select {
		case a.saveKick <- struct{}{}:
		default: // a save is already pending
		}
	}
	if rl != nil || len(krs) > 0 {
		if s := a.senderFor(n.Name); s != nil {
			if rl != nil {
				s.enqueue(outItem{path: PeerRevocationsPath, body: rl})
			}
			for _, kr := range krs {
				s.enqueue(outItem{path: PeerKeyRecordsPath, body: kr})
			}
		}
	}
	if back && a.started.Load() {
		select {
		case a.alive <- peerAlive{peer: protocol.PeerID(n.Name), since: since}:
		default:
			a.stats.eventsDropped.Add(1) // anti-entropy still finds what it would have brought
		}
	}
	if n.Name != a.self.Descriptor.NodeID {
		a.log.Debug("member event", "type", typ.String(), "member", n.Name)
		a.emit(MemberEvent{Type: typ, Member: Member{Descriptor: sd.Descriptor, PeerAddr: m.peerAddr, Alive: alive}})
	}
}

func (a *Agent) emit(ev MemberEvent) {
	if a.cfg.Events == nil {
		return
	}
	select {
	case a.cfg.Events <- ev:
	default:
		a.stats.eventsDropped.Add(1)
	}
}

// peerAddrOf resolves a node id to its peer API address.
func (a *Agent) peerAddrOf(nodeID string) (string, bool) {
	if nodeID == a.self.Descriptor.NodeID {
		return a.peerAddr, a.peerAddr != ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.mu.members[nodeID]
	if m == nil {
		return "", false
	}
	return m.peerAddr, true
}

// peers is the engine's membership view: alive, valid members except self,
// sorted.
func (a *Agent) peers() []protocol.PeerID {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]protocol.PeerID, 0, len(a.mu.members))
	for id, m := range a.mu.members {
		if !m.alive || id == a.self.Descriptor.NodeID || a.blockedPeer(id) ||
			m.sd.Descriptor.checkValid(now, a.mu.revocations) != nil {
			continue
		}
		out = append(out, protocol.PeerID(id))
	}
	slices.Sort(out)
	return out
}

// engineTransport and engineMembership adapt the agent to the engine's
// interfaces; they run on the loop goroutine.
type (
	engineTransport  Agent
	engineMembership Agent
)

var (
	_ protocol.Transport  = (*engineTransport)(nil)
	_ protocol.Membership = (*engineMembership)(nil)
)

// Send queues msg for the peer without blocking; a full queue is an error
// (the engine backs off and anti-entropy repairs).
func (t *engineTransport) Send(to protocol.PeerID, msg []byte) error {
	a := (*Agent)(t)
	s := a.senderFor(string(to))
	if s == nil {
		return ErrShutdown
	}
	if !s.enqueue(outItem{msg: slices.Clone(msg)}) {
		a.stats.sendDropped.Add(1)
		return fmt.Errorf("federation: send queue to %q full", to)
	}
	return nil
}

func (m *engineMembership) Peers() []protocol.PeerID { return (*Agent)(m).peers() }

// loadKnown reads descriptors.pem (descriptors seen in earlier runs);
// entries whose signature does not verify are skipped.
func (a *Agent) loadKnown() {
	blocks, err := readPEM(filepath.Join(a.cfg.DataDir, descriptorsFile))
	if err != nil {
		return
	}
	for _, b := range blocks {
		sd, err := DecodeSignedDescriptor(b.Bytes)
		if err != nil || b.Type != pemDescriptor {
			continue
		}
		if err := sd.Verify(a.cfg.AuthorityKey, sd.Descriptor.NotBefore, nil); err != nil {
			continue
		}
		if old := a.mu.known[sd.Descriptor.NodeID]; old == nil || old.Descriptor.Serial < sd.Descriptor.Serial {
			a.mu.known[sd.Descriptor.NodeID] = sd
		}
	}
}

// saveKnown persists the known descriptors (best effort).
func (a *Agent) saveKnown() {
	if a.cfg.DataDir == "" {
		return
	}
	a.mu.Lock()
	ids := make([]string, 0, len(a.mu.known))
	for id := range a.mu.known {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	blocks := make([]*pem.Block, 0, len(ids))
	for _, id := range ids {
		blocks = append(blocks, &pem.Block{Type: pemDescriptor, Bytes: a.mu.known[id].Encode()})
	}
	a.mu.Unlock()
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	if err := writePEM(filepath.Join(a.cfg.DataDir, descriptorsFile), false, blocks...); err != nil {
		a.log.Warn("persisting descriptors failed", "err", err)
	}
}

// maxSigCache bounds Agent.sigOK; it is cleared when full.
const maxSigCache = 4096

// verify is SignedDescriptor.Verify under the agent's authority and the
// revocation list in force, with the signature check cached per encoding.
// Must not be called with a.mu held.
func (a *Agent) verify(sd *SignedDescriptor, now time.Time) error {
	if sd == nil {
		return ErrNotEnrolled
	}
	key := string(sd.Encode())
	a.sigMu.Lock()
	_, ok := a.sigOK[key]
	a.sigMu.Unlock()
	if !ok {
		if err := sd.verifySignature(a.cfg.AuthorityKey); err != nil {
			return err
		}
		a.sigMu.Lock()
		if len(a.sigOK) >= maxSigCache {
			clear(a.sigOK)
		}
		a.sigOK[key] = struct{}{}
		a.sigMu.Unlock()
	}
	return sd.Descriptor.checkValid(now, a.revocations())
}

// maxReconnects bounds the failed members tried per reconnect round.
const maxReconnects = 3

// reconnectLoop periodically rejoins failed members (serf's reconnect): a
// few at random per round, each a memberlist push/pull that, once it
// succeeds, lets both sides refute their deaths and re-merge.
func (a *Agent) reconnectLoop() {
	t := time.NewTicker(a.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-a.shutdownCh:
			return
		case <-t.C:
		}
		now := a.cfg.Now()
		a.mu.Lock()
		var addrs []string
		for id, m := range a.mu.members {
			if !m.alive && !m.left && id != a.self.Descriptor.NodeID && !a.blockedPeer(id) &&
				m.sd.Descriptor.checkValid(now, a.mu.revocations) == nil {
				addrs = append(addrs, m.gossipAddr)
			}
		}
		a.mu.Unlock()
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		for _, addr := range addrs[:min(len(addrs), maxReconnects)] {
			select {
			case <-a.shutdownCh:
				return
			default:
			}
			if _, err := a.ml.Join([]string{addr}); err != nil {
				a.log.Debug("reconnect failed", "addr", addr, "err", err)
			}
		}
	}
}

// saveLoop persists the known descriptors when asked, and once more at
// shutdown if a request is pending.
func (a *Agent) saveLoop() {
	for {
		select {
		case <-a.saveKick:
			a.saveKnown()
		case <-a.shutdownCh:
			select {
			case <-a.saveKick:
				a.saveKnown()
			default:
			}
			return
		}
	}
}

package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/contacts"
	"github.com/signpost-federation/signpost/node/internal/records"
	"github.com/signpost-federation/signpost/node/internal/watches"
)

// AuditEvent is one line of the node's audit trail. It never carries an NHS
// number, token or seal key: the subject is referenced by lookup keys, which
// the audit log turns into keyed subject references.
type AuditEvent struct {
	Action  string // evaluate, lookup, locate, contact-request-sent, contact-request-received, contact-request-answered, contact-request-declined, contact-answer-sent, contact-answer-received, contact-request-expired, watch (once per handshake and per key sent later), watch-start, watch-stop, watch-expire, watch-seen (stored watches), record-create, record-delete, record-withheld, objection, objection-withdrawn, import, quota-alert
	Actor   string // user name, API token name or peer node id
	Purpose string
	Count   int
	LocalID string
	Peer    string
	Outcome string // ok, denied, error, queued (a record change stored, its publication waiting in the outbox; audited again, with the subject, once published)
	Subject [][16]byte
}

// Auditor appends events to the audit log and answers subject-access
// queries from it. Safe for concurrent use.
type Auditor interface {
	Record(ctx context.Context, e AuditEvent) error
	// Subject returns the events naming any of lookups, or
	// ErrNoAuditQuery if this auditor keeps no queryable log.
	Subject(lookups [][16]byte) (any, error)
}

// ErrNoAuditQuery is returned by an Auditor that cannot answer
// subject-access queries.
var ErrNoAuditQuery = errors.New("node: no queryable audit log")

// Options are the parts a node is assembled from; node/adapter holds the
// production ones and node/stack assembles them.
type Options struct {
	Tokenizer Tokenizer
	Index     Index
	// Keyring holds the federation's token keys (signed key records) and
	// this node's shares if it is one of their issuers; nil: no tokens can
	// be made (503 no_token_key), lookups by key still work.
	Keyring Keyring
	// KeyAdmin lets operators run DKGs and adopt key records through the
	// API (api_keyadmin.go); nil: those routes answer 503 no_federation.
	KeyAdmin KeyAdmin
	// Peers reaches other nodes; nil in a single-node setup.
	Peers Peers
	// Shields opens the shielded entries that name this node as their
	// broker (contact requests through it, Config.BrokerFor); nil: this
	// node relays none.
	Shields Shields
	Audit   Auditor
	// Auth authenticates requests; see auth.go.
	Auth Authenticator
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// PageFS holds the practitioner page (index.html at its root); nil
	// serves no page.
	PageFS fs.FS
	// WasmFS holds the wasm module and its loader, served under /wasm/.
	WasmFS fs.FS
	// AuditHeads is the node's own audit log, whose signed tree head
	// PublishAuditHead offers to the other members; nil: not offered.
	AuditHeads AuditHeads
	// Witness keeps the heads other members offer (see audit_witness.go);
	// nil: this node witnesses nobody.
	Witness *audit.Witness
	// Watches keeps the practitioners' stored watches (watches.go); nil:
	// node/internal/watches' bbolt store at DataDir/watches.db, which the
	// node closes at Shutdown (one given here is the caller's to close).
	Watches WatchStore
	// Metrics is the registry the node registers its metrics on and
	// /metrics serves; the assembly registers the other parts' collectors
	// on it too. nil: a registry of the node's own.
	Metrics *prometheus.Registry
}

// Node is one agency's node. Create with [New], start its publisher (and
// readiness) with [Node.Start], serve with [Node.Serve] or [Node.Handler],
// stop with [Node.Shutdown].
type Node struct {
	cfg     Config
	opt     Options
	log     *slog.Logger
	records *records.Store
	metrics *metrics
	hub     *hub
	// mineWatches watch this node's own lookup keys for matches (the
	// records store knows whose each is: records.Store.Owner); guarded by
	// mu.
	mu          sync.Mutex
	mineWatches []mineWatch

	witnesses  witnessState    // what each witness holds of this node's log
	contacts   *contacts.Store // contact requests, both sides (contact.go)
	watches    WatchStore      // stored watches and their notices (watches.go)
	ownWatches bool            // watches was opened here and is closed at Shutdown
	stored     storedIndex     // the index watches over stored watches' keys
	tok        *coalescer      // opt.Tokenizer behind a coalescer, with the node's evaluator
	limiter    *auth.Limiter   // per user, at this node
	// tokenLimiter is limiter for API tokens (Config.TokenRate).
	tokenLimiter *auth.Limiter
	quotas       *quotas       // per user and day, at this node
	peerLimiter  *auth.Limiter // per requesting node, at the issuer
	issuers      issuerHealth  // each issuer's last answer, for GET /v1/federation

	// pub is the outbox's background publisher and the claims it shares
	// with writes (outbox.go); stopPublisher ends it.
	pub           *publisher
	stopPublisher context.CancelFunc
	// ownWatched is closed once Start's background watch of the node's own
	// keys is in place.
	ownWatched chan struct{}
	// issuerDown is set while the last attempt to make tokens found the
	// issuer unreachable (/readyz reports it).
	issuerDown atomic.Bool

	ready   atomic.Bool
	started atomic.Bool
	closed  atomic.Bool
	srvMu   sync.Mutex
	srv     *http.Server
	wg      sync.WaitGroup
	// stopSweep ends the retention loop (see retention.go).
	stopSweep context.CancelFunc
}

// New opens the node's records under cfg.DataDir and assembles it. It
// deletes the records past their retention end at once, and keeps doing so
// in the background until Shutdown (see retention.go).
func New(cfg Config, opt Options) (*Node, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if opt.Tokenizer == nil || opt.Index == nil {
		return nil, fmt.Errorf("%w: a tokenizer and an index are required", ErrConfig)
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Audit == nil {
		opt.Audit = nopAudit{}
	}
	if opt.Auth == nil {
		return nil, fmt.Errorf("%w: an authenticator is required", ErrConfig)
	}
	if opt.Metrics == nil {
		opt.Metrics = prometheus.NewRegistry()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	key, err := objectionKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rs, err := records.Open(filepath.Join(cfg.DataDir, "records.db"), key)
	if errors.Is(err, records.ErrMarkerKey) {
		return nil, fmt.Errorf("node: %s is not the objection key of this records.db; restore the one backed up with it: %w", ObjectionKeyFile, err)
	} else if err != nil {
		return nil, err
	}
	cs, err := contacts.Open(filepath.Join(cfg.DataDir, "contacts.db"))
	if err != nil {
		rs.Close()
		return nil, err
	}
	ws, own := opt.Watches, false
	if ws == nil {
		if ws, err = watches.Open(filepath.Join(cfg.DataDir, "watches.db")); err != nil {
			rs.Close()
			cs.Close()
			return nil, err
		}
		own = true
	}
	n := &Node{
		cfg:        cfg,
		opt:        opt,
		log:        opt.Logger.With("node", cfg.NodeID),
		records:    rs,
		contacts:   cs,
		watches:    ws,
		ownWatches: own,
	}
	n.pub = newPublisher(n)
	n.ownWatched = make(chan struct{})
	if n.metrics, err = newMetrics(opt.Metrics, n); err != nil {
		rs.Close()
		cs.Close()
		if own {
			ws.Close()
		}
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	n.tok = newCoalescer(opt.Tokenizer, nodeEvaluator{n}, coalesceMax)
	n.limiter = newLimiter(cfg.UserRate, cfg.UserBurst, opt.Now)
	n.tokenLimiter = newLimiter(cfg.TokenRate, cfg.TokenBurst, opt.Now)
	n.quotas = newQuotas(opt.Now)
	n.peerLimiter = newLimiter(cfg.PeerRate, cfg.PeerBurst, opt.Now)
	n.hub = newHub(n)
	if err := n.watchStored(); err != nil {
		n.stored.cancelAll()
		rs.Close()
		cs.Close()
		if own {
			ws.Close()
		}
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	n.stopSweep = stop
	_, next, err := n.sweepRetention(sctx)
	if err != nil {
		n.log.Error("retention sweep failed; retrying", "err", err)
		next = opt.Now().Add(retentionRetry)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.retentionLoop(sctx, next)
	}()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.contactLoop(sctx)
	}()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.watchExpiryLoop(sctx)
	}()
	return n, nil
}

// coalesceMax bounds the numbers of concurrent small tokenisations batched
// into one call (one proof); larger calls go straight through.
const coalesceMax = 64

type nopAudit struct{}

func (nopAudit) Record(context.Context, AuditEvent) error { return nil }

func (nopAudit) Subject([][16]byte) (any, error) { return nil, ErrNoAuditQuery }

// Config returns the node's effective configuration.
func (n *Node) Config() Config { return n.cfg }

// noteIssuer records whether an attempt to make tokens reached the issuer.
func (n *Node) noteIssuer(err error) {
	switch {
	case err == nil:
		n.issuerDown.Store(false)
	case errors.Is(err, ErrIssuerUnavailable):
		n.issuerDown.Store(true)
	}
}

// Serve listens on cfg.Listen (or ln if non-nil) and serves until Shutdown.
// It returns the bound address once listening.
func (n *Node) Serve(ln net.Listener) (net.Addr, error) {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", n.cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("node: listen: %w", err)
		}
	}
	// Generous on purpose: the node's own limits are checked by the
	// handler, which can answer in JSON (uniform.go).
	ln = jsonErrorListener{ln}
	srv := &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.srvMu.Lock()
	n.srv = srv
	n.srvMu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Shutdown stops accepting requests, lets in-flight ones finish (each has
// committed before it is acknowledged), closes watches, ends the retention
// sweep and the publisher (what it has not published stays in the outbox)
// and closes the records store. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.ready.Store(false)
	var errs []error
	n.srvMu.Lock()
	srv := n.srv
	n.srvMu.Unlock()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	n.hub.close()
	n.stopSweep()
	if n.stopPublisher != nil {
		n.stopPublisher()
	}
	n.wg.Wait()
	n.mu.Lock()
	ws := n.mineWatches
	n.mineWatches = nil
	n.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	n.stored.cancelAll() // before the store closes: cancel waits for a notice being stored
	if n.ownWatches {
		if err := n.watches.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.records.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := n.contacts.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n *Node) purposeAllowed(p string) bool { return slices.Contains(n.cfg.Purposes, p) }

// ctxBackground is the context for work a request has handed off (audit of
// a WebSocket message, index events).
func (n *Node) ctxBackground() context.Context { return context.Background() }

// mineWatch is one index watch over some of this node's own lookup keys.
type mineWatch struct {
	keys   [][16]byte
	cancel func()
}

// maxMineWatches bounds the watches over own keys: beyond it all but the
// largest are consolidated into one watch over those of their keys still
// published (new watch first, then the old ones cancelled, so no event is
// missed; a duplicate notice is harmless).
const maxMineWatches = 32

// watchMine starts watching newly published own lookup keys for matches.
func (n *Node) watchMine(keys [][16]byte) {
	if len(keys) == 0 || n.closed.Load() {
		return
	}
	cancel := n.opt.Index.Watch(keys, n.onMineEvent)
	n.mu.Lock()
	n.mineWatches = append(n.mineWatches, mineWatch{keys: keys, cancel: cancel})
	var old []mineWatch
	if len(n.mineWatches) > maxMineWatches {
		// Keep the largest watch (at start, every key published before);
		// merge the others. Merging costs what they watch, not what the
		// node has published.
		big := 0
		for i, w := range n.mineWatches {
			if len(w.keys) > len(n.mineWatches[big].keys) {
				big = i
			}
		}
		keep := n.mineWatches[big]
		old = append(n.mineWatches[:big:big], n.mineWatches[big+1:]...)
		n.mineWatches = []mineWatch{keep}
	}
	n.mu.Unlock()
	if old == nil {
		return
	}
	var merged [][16]byte
	for _, w := range old {
		merged = append(merged, w.keys...)
	}
	// Every key of the old watches was committed as published before its
	// watch was added, so before this read; keys withdrawn since are
	// dropped.
	merged, err := n.records.StillOwned(merged)
	if err != nil {
		n.log.Error("reading own keys failed; watches not consolidated", "err", err)
		n.mu.Lock()
		n.mineWatches = append(n.mineWatches, old...)
		n.mu.Unlock()
		return
	}
	if len(merged) > 0 {
		cancel = n.opt.Index.Watch(merged, n.onMineEvent)
		n.mu.Lock()
		n.mineWatches = append(n.mineWatches, mineWatch{keys: merged, cancel: cancel})
		n.mu.Unlock()
	}
	for _, w := range old {
		w.cancel()
	}
}

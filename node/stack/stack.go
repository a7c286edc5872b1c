package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/secrethook"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/node/web"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/purpose"
)

// StackConfig is everything a complete node needs beyond its Config: its
// federation credentials, the issuer key if it is the issuer, and shared
// parts (a wasm runtime) when several nodes run in one process (the demo).
type StackConfig struct {
	Node node.Config
	// AuthorityKey verifies descriptors; Credentials are this node's.
	AuthorityKey ed25519.PublicKey
	Credentials  *federation.Credentials
	GossipKeys   [][]byte
	// GossipListen and PeerListen are the federation's addresses; Join the
	// gossip addresses of nodes to join.
	GossipListen, PeerListen string
	Join                     []string
	// KeyRecords are the federation's signed token key records to start
	// with (key_records_file); the node also adopts newer ones from its
	// peers and keeps them in its data directory. Its own shares, if it is
	// an issuer, are in Node.SharesDir.
	KeyRecords []*federation.KeyRecord
	// Runtime, if set, is shared and not closed by the stack.
	Runtime *wasm.Runtime
	// WasmCacheDir is where the stack's own runtime keeps compiled module
	// code across restarts (wasm.Config.CacheDir; `signpost node` sets it
	// with wasm.CommandCacheDir). Default "": compiled in memory.
	WasmCacheDir string
	// Argon2 overrides the password hash cost (the demo's users).
	Argon2 *auth.Argon2Params
	// FastGossip shortens federation timings (demo, tests), and the audit
	// head interval to 250ms unless set.
	FastGossip bool
	// AuditHeadInterval, if set, overrides Node.AuditHeadInterval (tests).
	AuditHeadInterval time.Duration
	Logger            *slog.Logger
}

// Stack is one running node with every part it is made of.
type Stack struct {
	Node    *node.Node
	Agent   *federation.Agent
	Auth    *auth.Authenticator
	Audit   *audit.Log
	Runtime *wasm.Runtime
	Addr    net.Addr

	// config is what the stack was started with (tests restart a node with
	// it, and forge an audit log with its key to show what only witnesses
	// catch).
	config     StackConfig
	ownRuntime bool
	log        *slog.Logger
	stop       context.CancelFunc
	wg         sync.WaitGroup
	once       sync.Once
}

// ValidateConfig checks a node's configuration as `signpost node` and
// StartStack do, reporting every problem at once (wrapped in
// node.ErrConfig): the core's own checks (Config.Validate) and the syntax
// of purpose names, whose one rule is wasm/purpose — the token code and the
// federation's descriptors apply the same, so a name is refused here
// exactly when it could never be tokenised or enrolled. The core itself
// only refuses purposes outside its configured set.
func ValidateConfig(c node.Config) error {
	errs := []error{c.Validate()}
	purposes := c.Purposes
	if len(purposes) == 0 {
		purposes = node.DefaultConfig().Purposes
	}
	var bad []error
	for _, p := range purposes {
		if err := purpose.Validate(p); err != nil {
			bad = append(bad, fmt.Errorf("purpose %q: %w", p, err))
		}
	}
	if len(bad) > 0 {
		errs = append(errs, fmt.Errorf("%w: %w", node.ErrConfig, errors.Join(bad...)))
	}
	return errors.Join(errs...)
}

// holderSecret loads or creates the node's 32-byte holder secret (0600):
// anyone with it can rewrite this node's entries.
func holderSecret(dir string) ([32]byte, error) {
	var s [32]byte
	path := filepath.Join(dir, "holder.key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		copy(s[:], b)
		return s, nil
	}
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("node: holder secret %s: unreadable or wrong size", path)
	}
	if _, err := rand.Read(s[:]); err != nil {
		return s, err
	}
	if err := os.WriteFile(path, s[:], 0o600); err != nil {
		return s, fmt.Errorf("node: write holder secret: %w", err)
	}
	return s, nil
}

// stackMetrics returns the registry the node's /metrics serves, with the
// collectors of the parts the core does not know: the federation agent's
// (memberlist's included), its replica's, and the Go runtime's and the
// process's. The node registers its own on it.
func stackMetrics(a *federation.Agent) (*prometheus.Registry, error) {
	fc, err := a.Collector()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{fc, locator.NewCollector(a.Store()),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	return reg, nil
}

// StartStack assembles and starts a complete node: federation agent,
// locator replica, wasm runtime, issuer (if this node is it), users,
// audit log, HTTP server, and the node's publisher. The node is ready at
// once: what it has still to publish waits in its outbox and goes out in
// the background while the issuer answers (/readyz says what is
// degraded). Each step is a method of assembly; if one fails, what the earlier
// ones built is closed again, in reverse order.
func StartStack(ctx context.Context, sc StackConfig) (_ *Stack, err error) {
	a, err := newAssembly(sc)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.undo()
		}
	}()
	// The audit log first: a node whose log fails verification must not
	// start, nor append signed lines after a forged one.
	if err := a.openAudit(); err != nil {
		return nil, err
	}
	if err := a.startRuntime(ctx); err != nil {
		return nil, err
	}
	reg, err := a.startAgent()
	if err != nil {
		return nil, err
	}
	index, err := a.openIndex()
	if err != nil {
		return nil, err
	}
	auditLog, err := a.openUsersAndAudit()
	if err != nil {
		return nil, err
	}
	if err := a.newNode(index, auditLog, reg); err != nil {
		return nil, err
	}
	if err := a.serve(ctx); err != nil {
		return nil, err
	}
	return a.s, nil
}

// assembly is one StartStack in progress: its checked configuration, the
// stack built so far and how to close it again.
type assembly struct {
	sc      StackConfig
	cfg     node.Config // defaulted; NodeID and Agency from the descriptor
	log     *slog.Logger
	s       *Stack
	cleanup []func()
	// holderSecret is kept for the tests' secret hook (secrethook.Stack).
	holderSecret [32]byte
	// tlsCert, if set, is served on the HTTP listener.
	tlsCert *tls.Certificate
}

// newAssembly checks the configuration and makes the data directory.
func newAssembly(sc StackConfig) (*assembly, error) {
	if err := ValidateConfig(sc.Node); err != nil {
		return nil, err
	}
	cfg, err := sc.Node.WithDefaults()
	if err != nil {
		return nil, err
	}
	if sc.Credentials == nil {
		return nil, fmt.Errorf("%w: federation credentials are required", node.ErrConfig)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	// Key shares, like every key, must be owner-only: a node refuses to
	// start with one that others may read, as ssh refuses such a key. In
	// the data directory (the default) checkDataDir covered them.
	if cfg.SharesDir != "" && !within(cfg.SharesDir, cfg.DataDir) {
		if err := checkDataDir(cfg.SharesDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("shares_dir: %w", err)
		}
	}
	var tlsCert *tls.Certificate
	if cfg.TLS() {
		if err := checkSecretFile("tls_key_file", cfg.TLSKeyFile); err != nil {
			return nil, err
		}
		c, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: tls_cert_file, tls_key_file: %w", node.ErrConfig, err)
		}
		tlsCert = &c
	}
	self := sc.Credentials.Descriptor.Descriptor
	cfg.NodeID = self.NodeID
	if cfg.Agency == "" {
		cfg.Agency = self.Agency
	}
	log := sc.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.InsecureHTTP {
		log.Warn("insecure_http is set: serving plain HTTP; only a TLS-terminating proxy may stand between this node and its users",
			"listen", cfg.Listen)
	}
	return &assembly{sc: sc, cfg: cfg, log: log, tlsCert: tlsCert, s: &Stack{log: log, Runtime: sc.Runtime, config: sc}}, nil
}

// undo closes what the steps so far built, last first.
func (a *assembly) undo() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
}

// startRuntime starts a wasm runtime unless the config shares one.
func (a *assembly) startRuntime(ctx context.Context) error {
	if a.s.Runtime != nil {
		return nil
	}
	wc := wasm.DefaultConfig()
	wc.CacheDir = a.sc.WasmCacheDir
	rt, err := wasm.New(ctx, wc)
	if err != nil {
		return fmt.Errorf("node: wasm runtime: %w", err)
	}
	a.s.Runtime, a.s.ownRuntime = rt, true
	a.cleanup = append(a.cleanup, func() { rt.Close(context.Background()) })
	return nil
}

// startAgent creates the federation agent (not yet started) and the
// metrics registry the node serves, with the agent's collectors on it.
func (a *assembly) startAgent() (*prometheus.Registry, error) {
	sc := a.sc
	fc := federation.DefaultConfig()
	fc.DataDir = a.cfg.DataDir
	fc.GossipBindAddr = sc.GossipListen
	fc.PeerBindAddr = sc.PeerListen
	fc.AuthorityKey = sc.AuthorityKey
	fc.Credentials = sc.Credentials
	fc.GossipKeys = sc.GossipKeys
	fc.KeyRecords = sc.KeyRecords
	fc.ShareDir = a.cfg.SharesDir
	fc.Logger = a.log
	if sc.FastGossip {
		fc.GossipInterval, fc.ProbeInterval, fc.ProbeTimeout, fc.PushPullInterval = 50*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond, 5*time.Second
		fc.Protocol.PushInterval = 50 * time.Millisecond
		fc.Protocol.AntiEntropyInterval = 2 * time.Second
	}
	ag, err := federation.NewAgent(fc)
	if err != nil {
		return nil, err
	}
	a.s.Agent = ag
	a.cleanup = append(a.cleanup, func() { ag.Shutdown(context.Background()) })
	return stackMetrics(ag)
}

// openIndex binds the node's Index to its locator holder (its holder
// secret loaded or made) and the agent's replica.
func (a *assembly) openIndex() (*adapter.LocatorIndex, error) {
	secret, err := holderSecret(a.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	holder, err := locator.NewHolder(a.cfg.NodeID, a.sc.Credentials.PrivateKey, secret)
	if err != nil {
		return nil, err
	}
	a.holderSecret = secret
	x := adapter.NewLocatorIndex(holder, a.s.Agent.Store(), a.s.Agent.Publish, a.s.Agent, nil).WithPublishBatch(a.s.Agent.PublishBatch)
	if a.cfg.Shielded {
		// Entries name the broker and go to it to publish: this node
		// never pushes its own into gossip first.
		peers, broker := adapter.AgentPeers{A: a.s.Agent}, a.cfg.Broker
		x.WithBroker(broker).WithRelay(func(ctx context.Context, es port.ShieldedEntries) error {
			return peers.Call(ctx, broker, node.PeerShieldedEntriesPath, es, &struct{}{})
		})
	}
	return x, nil
}

// openAudit opens the signed audit log, verified (see openAudit in
// audit.go).
func (a *assembly) openAudit() error {
	lg, err := openAudit(a.cfg.DataDir, a.sc.Credentials.PrivateKey, a.log)
	if err != nil {
		return err
	}
	a.s.Audit = lg
	a.cleanup = append(a.cleanup, func() { lg.Close() })
	return nil
}

// openUsersAndAudit binds the audit log (opened first) as the node's
// Auditor and opens the users and sessions, whose sign-ins it audits.
func (a *assembly) openUsersAndAudit() (node.AuditLog, error) {
	lg := a.s.Audit
	if note := secrethook.Stack; note != nil { // the audit key exists now
		note(secrethook.Secrets{NodeKey: a.sc.Credentials.PrivateKey, GossipKeys: a.sc.GossipKeys,
			Holder: a.holderSecret, AuditLogPath: lg.Path()})
	}
	auditLog := node.AuditLog{L: lg}
	acfg := auth.DefaultConfig()
	acfg.UsersPath = filepath.Join(a.cfg.DataDir, auth.UsersFileName)
	acfg.AllowedOrigins = a.cfg.AllowedOrigins
	acfg.Secure = a.cfg.SecureCookies()
	acfg.TrustedProxies = a.cfg.TrustedProxyPrefixes()
	if a.sc.Argon2 != nil {
		acfg.Argon2 = *a.sc.Argon2
	}
	// The page names the agency and offers only the purposes the core
	// accepts (its configured set) to the one role that looks up.
	acfg.Agency = auth.SessionAgency{NodeID: a.cfg.NodeID, Name: a.cfg.Agency, Category: a.cfg.Category}
	purposes := slices.Clone(a.cfg.Purposes)
	acfg.Purposes = func(p auth.Principal) []string {
		if p.Role != auth.RolePractitioner {
			return nil
		}
		return purposes
	}
	log := a.log
	acfg.OnLogin = func(r *http.Request, p auth.Principal, ok bool) {
		ev := node.AuditEvent{Action: "login", Actor: p.Actor(), Outcome: "ok"}
		if !ok {
			ev.Actor, ev.Outcome = "anonymous", "denied"
		}
		if err := auditLog.Record(r.Context(), ev); err != nil {
			log.Error("audit append failed", "action", "login", "err", err)
		}
	}
	var err error
	if a.s.Auth, err = auth.New(acfg); err != nil {
		return node.AuditLog{}, err
	}
	return auditLog, nil
}

// newNode creates the core with its adapters.
func (a *assembly) newNode(index node.Index, auditLog node.AuditLog, reg *prometheus.Registry) error {
	// The node's own token work runs the module's source compiled
	// natively (one implementation compiled twice; docs/RATIONALE.md).
	tz := adapter.NewNativeTokenizer()
	witness, err := audit.OpenWitness(filepath.Join(a.cfg.DataDir, audit.WitnessFileName), nil)
	if err != nil {
		return err
	}
	n, err := node.New(a.cfg, node.Options{
		Tokenizer: tz, Index: index, Keyring: adapter.NewFederationKeyring(a.s.Agent, a.cfg.NodeID, nil), KeyAdmin: adapter.AgentKeyAdmin{A: a.s.Agent}, Peers: adapter.AgentPeers{A: a.s.Agent},
		Shields: adapter.NodeShields{NodeID: a.cfg.NodeID, NodeKey: a.sc.Credentials.PrivateKey, Keys: a.s.Agent},
		Audit:   auditLog, Auth: node.UserAuth{A: a.s.Auth}, Logger: a.log,
		PageFS: web.FS, WasmFS: wasm.WebFS,
		Metrics: reg, AuditHeads: a.s.Audit, Witness: witness,
	})
	if err != nil {
		return err
	}
	a.s.Node = n
	a.cleanup = append(a.cleanup, func() { n.Shutdown(context.Background()) })
	return nil
}

// serve mounts the node's peer endpoints on the agent, starts and joins
// the federation, serves HTTP, and starts the node's publisher.
func (a *assembly) serve(ctx context.Context) error {
	s := a.s
	peer := s.Node.PeerHandler(adapter.PeerID)
	for _, p := range []string{"POST " + node.PeerEvaluatePath, "POST " + node.PeerContactPath, "POST " + node.PeerContactAnswerPath, "POST " + node.PeerBrokerPath, "POST " + node.PeerShieldedEntriesPath} {
		if err := s.Agent.HandlePeer(p, peer); err != nil {
			return err
		}
	}
	auditPeer := s.Node.AuditPeerHandler(adapter.PeerID)
	for _, p := range []string{"POST " + node.PeerAuditHeadPath, "POST " + node.PeerAuditHeldPath} {
		if err := s.Agent.HandlePeer(p, auditPeer); err != nil {
			return err
		}
	}
	if err := s.Agent.Start(ctx); err != nil {
		return err
	}
	if len(a.sc.Join) > 0 {
		if _, err := s.Agent.Join(a.sc.Join); err != nil {
			a.log.Warn("join failed; will be joined by others", "err", err)
		}
	}
	ln, err := a.listen()
	if err != nil {
		return err
	}
	if s.Addr, err = s.Node.Serve(ln); err != nil {
		ln.Close()
		return err
	}
	// Ready at once: what is still to publish waits in the node's outbox,
	// which the node's publisher drains while the issuer answers.
	if err := s.Node.Start(); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	interval := a.cfg.AuditHeadInterval.D()
	switch {
	case a.sc.AuditHeadInterval > 0:
		interval = a.sc.AuditHeadInterval
	case a.sc.FastGossip:
		interval = 250 * time.Millisecond
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.auditHeadLoop(rctx, interval)
	}()
	return nil
}

// listen opens the HTTP listener: TLS when the config names a certificate
// (HTTP/1.1 only, which the WebSocket needs), plain otherwise (loopback, or
// insecure_http behind a proxy; Config.Validate refused the rest).
func (a *assembly) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	if a.tlsCert == nil {
		return ln, nil
	}
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{*a.tlsCert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}), nil
}

// Shutdown stops the node gracefully: HTTP first (in-flight requests
// finish, each committed before it was acknowledged), then the federation
// (leaving the membership), the audit log and the runtime. Idempotent.
func (s *Stack) Shutdown(ctx context.Context) error {
	var errs []error
	s.once.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		s.wg.Wait()
		errs = append(errs, s.Node.Shutdown(ctx))
		if err := s.Agent.Leave(ctx); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, s.Agent.Shutdown(ctx))
		errs = append(errs, s.Audit.Close())
		if s.ownRuntime {
			errs = append(errs, s.Runtime.Close(ctx))
		}
	})
	return errors.Join(errs...)
}

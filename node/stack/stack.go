package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	// IssuerPrivateKey is set on the issuer node only.
	IssuerPrivateKey []byte
	// IssuerPublicKey verifies evaluation proofs (every node).
	IssuerPublicKey []byte
	// Runtime, if set, is shared and not closed by the stack.
	Runtime *wasm.Runtime
	// Argon2 overrides the password hash cost (the demo's users).
	Argon2 *auth.Argon2Params
	// FastGossip shortens federation timings (demo, tests).
	FastGossip bool
	Logger     *slog.Logger
}

// Stack is one running node with every part it is made of.
type Stack struct {
	Node    *node.Node
	Agent   *federation.Agent
	Auth    *auth.Authenticator
	Audit   *audit.Log
	Runtime *wasm.Runtime
	Addr    net.Addr

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
// audit log, HTTP server. Republication of the node's records runs in the
// background (the issuer may not be reachable yet); /readyz says when it is
// done.
func StartStack(ctx context.Context, sc StackConfig) (_ *Stack, err error) {
	if err := ValidateConfig(sc.Node); err != nil {
		return nil, err
	}
	cfg, err := sc.Node.WithDefaults()
	if err != nil {
		return nil, err
	}
	log := sc.Logger
	if log == nil {
		log = slog.Default()
	}
	if sc.Credentials == nil {
		return nil, fmt.Errorf("%w: federation credentials are required", node.ErrConfig)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	s := &Stack{log: log, Runtime: sc.Runtime}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	if s.Runtime == nil {
		s.Runtime, err = wasm.New(ctx, wasm.DefaultConfig())
		if err != nil {
			return nil, fmt.Errorf("node: wasm runtime: %w", err)
		}
		s.ownRuntime = true
		cleanup = append(cleanup, func() { s.Runtime.Close(context.Background()) })
	}

	fc := federation.DefaultConfig()
	fc.DataDir = cfg.DataDir
	fc.GossipBindAddr = sc.GossipListen
	fc.PeerBindAddr = sc.PeerListen
	fc.AuthorityKey = sc.AuthorityKey
	fc.Credentials = sc.Credentials
	fc.GossipKeys = sc.GossipKeys
	fc.Logger = log
	if sc.FastGossip {
		fc.GossipInterval, fc.ProbeInterval, fc.ProbeTimeout, fc.PushPullInterval = 50*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond, 5*time.Second
		fc.Protocol.PushInterval = 50 * time.Millisecond
		fc.Protocol.AntiEntropyInterval = 2 * time.Second
	}
	s.Agent, err = federation.NewAgent(fc)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { s.Agent.Shutdown(context.Background()) })
	reg, err := stackMetrics(s.Agent)
	if err != nil {
		return nil, err
	}
	self := sc.Credentials.Descriptor.Descriptor
	cfg.NodeID = self.NodeID
	if cfg.Agency == "" {
		cfg.Agency = self.Agency
	}

	secret, err := holderSecret(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	holder, err := locator.NewHolder(self.NodeID, sc.Credentials.PrivateKey, secret)
	if err != nil {
		return nil, err
	}
	index := adapter.NewLocatorIndex(holder, s.Agent.Store(), s.Agent.Publish, s.Agent, nil)

	acfg := auth.DefaultConfig()
	acfg.UsersPath = filepath.Join(cfg.DataDir, auth.UsersFileName)
	acfg.AllowedOrigins = cfg.AllowedOrigins
	if sc.Argon2 != nil {
		acfg.Argon2 = *sc.Argon2
	}
	if s.Audit, err = audit.Open(filepath.Join(cfg.DataDir, audit.FileName), audit.Config{Signer: sc.Credentials.PrivateKey}); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { s.Audit.Close() })
	if note := secrethook.Stack; note != nil {
		note(secrethook.Secrets{NodeKey: sc.Credentials.PrivateKey, GossipKeys: sc.GossipKeys, IssuerKey: sc.IssuerPrivateKey,
			Holder: secret, AuditLogPath: filepath.Join(cfg.DataDir, audit.FileName)})
	}
	auditLog := node.AuditLog{L: s.Audit}
	acfg.OnLogin = func(r *http.Request, p auth.Principal, ok bool) {
		ev := node.AuditEvent{Action: "login", Actor: p.Actor(), Outcome: "ok"}
		if !ok {
			ev.Actor, ev.Outcome = "anonymous", "denied"
		}
		if err := auditLog.Record(r.Context(), ev); err != nil {
			log.Error("audit append failed", "action", "login", "err", err)
		}
	}
	if s.Auth, err = auth.New(acfg); err != nil {
		return nil, err
	}

	var issuer node.Evaluator
	if len(sc.IssuerPrivateKey) > 0 {
		iss, err := wasm.NewIssuer(sc.IssuerPrivateKey)
		if err != nil {
			return nil, err
		}
		issuer = adapter.IssuerEvaluator{I: iss}
		cfg.Issuer = cfg.NodeID
		if len(sc.IssuerPublicKey) == 0 {
			sc.IssuerPublicKey = iss.PublicKey()
		}
	}
	if len(sc.IssuerPublicKey) == 0 {
		return nil, fmt.Errorf("%w: the issuer's public key is required", node.ErrConfig)
	}
	tz := &adapter.WasmTokenizer{R: s.Runtime, Epoch: cfg.Epoch, IssuerPublicKey: sc.IssuerPublicKey}
	s.Node, err = node.New(cfg, node.Options{
		Tokenizer: tz, Index: index, Issuer: issuer, Peers: adapter.AgentPeers{A: s.Agent},
		Audit: auditLog, Auth: node.UserAuth{A: s.Auth}, Logger: log,
		PageFS: web.FS, WasmFS: wasm.WebFS, IssuerPublicKey: sc.IssuerPublicKey,
		Metrics: reg,
	})
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { s.Node.Shutdown(context.Background()) })

	peer := s.Node.PeerHandler(adapter.PeerID)
	for _, p := range []string{"POST " + node.PeerEvaluatePath, "POST " + node.PeerContactPath} {
		if err := s.Agent.HandlePeer(p, peer); err != nil {
			return nil, err
		}
	}
	if err := s.Agent.Start(ctx); err != nil {
		return nil, err
	}
	if len(sc.Join) > 0 {
		if _, err := s.Agent.Join(sc.Join); err != nil {
			log.Warn("join failed; will be joined by others", "err", err)
		}
	}
	if s.Addr, err = s.Node.Serve(nil); err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.republishLoop(rctx)
	}()
	return s, nil
}

// republishLoop republishes the node's records, retrying while the issuer
// is unreachable.
func (s *Stack) republishLoop(ctx context.Context) {
	delay := 200 * time.Millisecond
	for {
		err := s.Node.Republish(ctx)
		if err == nil {
			return
		}
		s.log.Warn("republish failed; retrying", "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, 10*time.Second)
	}
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

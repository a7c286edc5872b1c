package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// FederationMain is `signpost federation`: the authority's tools (init,
// keygen, enrol, revoke) and `run`, which runs a node's federation layer
// alone (tests, demos). Exit codes: 0 success, 1 failure, 2 usage.
func FederationMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	subs := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"init": cliInit, "keygen": cliKeygen, "enrol": cliEnrol, "revoke": cliRevoke, "run": cliRun,
		"sign-key": cliSignKey, "keys": cliKeys,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprint(stderr, `usage: signpost federation <command> [flags]

  init    create an authority directory (authority key, gossip key, revocation list)
  keygen  create a node key pair (the private key never leaves the node)
  enrol   sign a node's descriptor with the authority
  revoke  add a node (or one of its descriptors) to the revocation list
  sign-key  sign a DKG's public result into a key record
  keys    print a signed key-record file (purpose, epoch, t, n, issuers)
  run     run a node's federation layer from a JSON config (tests, demos)

Through a running node's API (an operator's token in $SIGNPOST_TOKEN):
  dkg start|status|result   run a DKG among issuers, follow it, fetch its result
  dkg reshare|approve|erase-old  move a key to new issuers (same tokens), erase old shares
  key-records add|list      adopt a signed key record (it spreads); list the keys

Run "signpost federation <command> -h" for its flags.
`)
		return 2
	}
	return subs[args[0]](ctx, args[1:], stdout, stderr)
}

// parseFlags parses fs; it reports usage errors (exit 2) and -h (exit 0).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "error:", err)
	return 1
}

func cliInit(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation init", flag.ContinueOnError)
	dir := fs.String("dir", "", "authority directory to create (required)")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "init: -dir is required")
		return 2
	}
	a, err := InitAuthorityDir(*dir, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "federation %s initialised in %s (gossip label %q)\n", FederationID(a.PublicKey()), *dir, GossipLabel(a.PublicKey()))
	return 0
}

func cliKeygen(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation keygen", flag.ContinueOnError)
	key := fs.String("key", "node.key", "private key file to write (mode 0600)")
	pub := fs.String("pub", "node.pub", "public key file to write (give it to the authority)")
	issuer := fs.Bool("issuer", false, "removed: no machine makes or holds a whole token key any more (see dkg)")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *issuer {
		fmt.Fprintln(stderr, "keygen -issuer: removed. No machine makes or holds a whole token key any more: the issuers make\n"+
			"each key together with a DKG (signpost federation dkg start --node URL ...), the authority signs the\n"+
			"result (signpost federation sign-key), and each issuer keeps only its share.")
		return 2
	}
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fail(stderr, err)
	}
	if _, err := os.Stat(*key); err == nil {
		return fail(stderr, fmt.Errorf("%s already exists", *key))
	}
	if err := writePEM(*key, true, &pem.Block{Type: pemNodeKey, Bytes: sk.Seed()}); err != nil {
		return fail(stderr, err)
	}
	if err := WriteNodePublicKey(*pub, pk); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", *key, *pub)
	return 0
}

func cliEnrol(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation enrol", flag.ContinueOnError)
	dir := fs.String("dir", "", "authority directory (required)")
	id := fs.String("id", "", "node id: a-z, 0-9, '-' (required)")
	agency := fs.String("agency", "", "agency name (required)")
	category := fs.String("category", "", "service category, e.g. social-care (required)")
	purposes := fs.String("purposes", "", "comma-separated authorised purposes")
	validFor := fs.Duration("valid-for", 365*24*time.Hour, "validity from now")
	pubPath := fs.String("pub", "", "node public key file (from keygen); if empty a key pair is generated and written into -out")
	gossipAddr := fs.String("gossip-addr", "", "registered gossip address (informational)")
	peerAddr := fs.String("peer-addr", "", "registered peer API address (informational)")
	out := fs.String("out", "", "file to write (required): credentials (descriptor and key) or, with -pub, the descriptor alone")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *dir == "" || *id == "" || *agency == "" || *category == "" || *out == "" {
		fmt.Fprintln(stderr, "enrol: -dir, -id, -agency, -category and -out are required")
		return 2
	}
	var priv ed25519.PrivateKey
	var pub ed25519.PublicKey
	var err error
	if *pubPath != "" {
		if pub, err = LoadNodePublicKey(*pubPath); err != nil {
			return fail(stderr, err)
		}
	} else if pub, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return fail(stderr, err)
	}
	var ps []string
	if *purposes != "" {
		ps = strings.Split(*purposes, ",")
	}
	now := time.Now()
	sd, err := EnrolInDir(*dir, Descriptor{
		NodeID: *id, Agency: *agency, Category: *category, Purposes: ps, PublicKey: pub,
		GossipAddr: *gossipAddr, PeerAddr: *peerAddr, NotBefore: now.Add(-time.Minute), Expires: now.Add(*validFor),
	})
	if err != nil {
		return fail(stderr, err)
	}
	if err := WriteCredentials(*out, &Credentials{Descriptor: sd, PrivateKey: priv}); err != nil {
		return fail(stderr, err)
	}
	d := sd.Descriptor
	fmt.Fprintf(stdout, "enrolled %s serial %d, valid until %s, written to %s\n", d.NodeID, d.Serial, d.Expires.Format(time.RFC3339), *out)
	if priv == nil {
		fmt.Fprintf(stdout, "the node's credentials file is this descriptor followed by its key: cat %s node.key > node.credentials\n", *out)
	}
	return 0
}

func cliRevoke(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation revoke", flag.ContinueOnError)
	dir := fs.String("dir", "", "authority directory (required)")
	id := fs.String("id", "", "node id to revoke (required)")
	serial := fs.Uint64("serial", 0, "revoke only this descriptor serial (0: every descriptor of the node)")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *dir == "" || *id == "" {
		fmt.Fprintln(stderr, "revoke: -dir and -id are required")
		return 2
	}
	rl, err := RevokeInDir(*dir, Revocation{NodeID: *id, Serial: *serial}, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "revocation list version %d (%d entries) written; give it to any node (the revocations file of its run config, or Agent.SetRevocations) and it spreads\n", rl.Version, len(rl.Entries))
	return 0
}

// RunConfig is the JSON file of `signpost federation run`. Paths are as
// written (relative to the working directory).
type RunConfig struct {
	// DataDir holds the replica and the descriptors seen (required).
	DataDir string `json:"data_dir"`
	// GossipBind and PeerBind are listen addresses (host:port; port 0
	// picks one). Defaults as in DefaultConfig.
	GossipBind string `json:"gossip_bind"`
	PeerBind   string `json:"peer_bind"`
	// AuthorityPublicKey, GossipKey and Credentials are file paths
	// (required); Revocations is an optional revocation list file.
	AuthorityPublicKey string `json:"authority_public_key"`
	GossipKey          string `json:"gossip_key"`
	Credentials        string `json:"credentials"`
	Revocations        string `json:"revocations"`
	// KeyRecords is an optional file of signed key records (sign-key's
	// output); ShareDir holds the node's key shares (default
	// data_dir/keys).
	KeyRecords string `json:"key_records"`
	ShareDir   string `json:"share_dir"`
	// Join lists gossip addresses of nodes to join at start.
	Join []string `json:"join"`
	// Fast shortens gossip and protocol timings (loopback tests, demos).
	Fast bool `json:"fast"`
}

// loadRunConfig reads a RunConfig and builds the agent Config from it.
func loadRunConfig(path string, logger *slog.Logger) (Config, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, nil, fmt.Errorf("read config: %w", err)
	}
	var rc RunConfig
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return Config{}, nil, fmt.Errorf("config %s: %w", path, err)
	}
	if rc.DataDir == "" || rc.AuthorityPublicKey == "" || rc.GossipKey == "" || rc.Credentials == "" {
		return Config{}, nil, fmt.Errorf("config %s: data_dir, authority_public_key, gossip_key and credentials are required", path)
	}
	cfg := DefaultConfig()
	cfg.DataDir = rc.DataDir
	if rc.GossipBind != "" {
		cfg.GossipBindAddr = rc.GossipBind
	}
	if rc.PeerBind != "" {
		cfg.PeerBindAddr = rc.PeerBind
	}
	if cfg.AuthorityKey, err = LoadAuthorityPublicKey(rc.AuthorityPublicKey); err != nil {
		return Config{}, nil, err
	}
	if cfg.GossipKeys, err = LoadGossipKeys(rc.GossipKey); err != nil {
		return Config{}, nil, err
	}
	if cfg.Credentials, err = LoadCredentials(rc.Credentials); err != nil {
		return Config{}, nil, err
	}
	if rc.Revocations != "" {
		if cfg.Revocations, err = LoadRevocationList(rc.Revocations, cfg.AuthorityKey); err != nil {
			return Config{}, nil, err
		}
	}
	if rc.KeyRecords != "" {
		if cfg.KeyRecords, err = LoadKeyRecords(rc.KeyRecords, cfg.AuthorityKey); err != nil {
			return Config{}, nil, err
		}
	}
	cfg.ShareDir = rc.ShareDir
	if rc.Fast {
		cfg.GossipInterval, cfg.ProbeInterval, cfg.ProbeTimeout = 20*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		cfg.PushPullInterval, cfg.ReconnectInterval = 2*time.Second, 500*time.Millisecond
		cfg.Protocol.PushInterval, cfg.Protocol.AntiEntropyInterval = 20*time.Millisecond, time.Second
	}
	cfg.Logger = logger
	return cfg, rc.Join, nil
}

// cliRun runs one node's federation layer until ctx is cancelled, then
// leaves. It prints its addresses and every membership event to stdout,
// one line each, so that scripts and tests can follow it.
func cliRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation run", flag.ContinueOnError)
	path := fs.String("config", "", "JSON config file (see RunConfig) (required)")
	verbose := fs.Bool("v", false, "log at debug level")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintln(stderr, "run: -config is required")
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, join, err := loadRunConfig(*path, logger)
	if err != nil {
		return fail(stderr, err)
	}
	events := make(chan MemberEvent, 256)
	cfg.Events = events
	a, err := NewAgent(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	if err := a.Start(ctx); err != nil {
		a.Shutdown(context.Background())
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "node %s gossip %s peer %s\n", a.Self().NodeID, a.GossipAddr(), a.PeerAddr())
	if len(join) > 0 {
		if _, err := a.Join(join); err != nil {
			a.Shutdown(context.Background())
			return fail(stderr, err)
		}
	}
	for {
		select {
		case ev := <-events:
			switch {
			case ev.KeyRecord != nil:
				fmt.Fprintf(stdout, "%s %s epoch %d serial %d\n", ev.Type, ev.KeyRecord.Purpose, ev.KeyRecord.Epoch, ev.KeyRecord.Serial)
			case ev.DKG != nil:
				fmt.Fprintf(stdout, "%s %s %s\n", ev.Type, ev.DKG.Session, ev.DKG.Phase)
			case ev.Err != nil:
				fmt.Fprintf(stdout, "%s %s: %v\n", ev.Type, ev.Member.NodeID, ev.Err)
			default:
				fmt.Fprintf(stdout, "%s %s\n", ev.Type, ev.Member.NodeID)
			}
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := a.Leave(lctx)
			cancel()
			if err != nil {
				return fail(stderr, err)
			}
			return 0
		}
	}
}

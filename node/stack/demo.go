package stack

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
)

// DemoAgency is one agency of the demo federation.
type DemoAgency struct {
	NodeID, Agency, Category string
	Purposes                 []string
}

// DemoAgencies are the demo's agencies: four kinds, the first the issuer.
// The school is authorised for safeguarding only, to show the purpose
// firewall.
var DemoAgencies = []DemoAgency{
	{"northshire-csc", "Northshire Children's Social Care", "children-social-care", []string{"direct-care", "safeguarding"}},
	{"riverside-school", "Riverside Primary School", "school", []string{"safeguarding"}},
	{"harbour-gp", "Harbour Lane GP Practice", "gp", []string{"direct-care", "safeguarding"}},
	{"city-ed", "City Hospital Emergency Department", "emergency-department", []string{"direct-care", "safeguarding"}},
}

// DemoPassword is every demo user's password (synthetic, loopback only).
const DemoPassword = "signpost-demo"

// DemoUsers are created on every demo node, one per role.
var DemoUsers = []string{node.RolePractitioner, node.RoleOperator, node.RoleAuditor}

// DemoConfig configures StartDemo.
type DemoConfig struct {
	// Dir holds every node's data dir. Required.
	Dir string
	// BasePort is the first node's HTTP port on 127.0.0.1 (the others
	// follow); 0 picks free ports.
	BasePort int
	// People is the number of synthetic people. Default 60.
	People int
	// Argon2 overrides the users' password hash cost (tests).
	Argon2 *auth.Argon2Params
	// WasmCacheDir is where compiled module code is kept across runs
	// (wasm.Config.CacheDir; `signpost demo` sets it with
	// wasm.CommandCacheDir). Default "": compiled in memory.
	WasmCacheDir string
	Logger       *slog.Logger
}

// Demo is a running local federation.
type Demo struct {
	Stacks []*Stack
	// People are the synthetic NHS numbers, and which node ids hold each.
	People []DemoPerson
	// Tokens are an operator API token per node id.
	Tokens map[string]string
	// PractitionerTokens are a practitioner API token per node id.
	PractitionerTokens map[string]string
	Entries            int
	runtime            *wasm.Runtime
}

// DemoPerson is a synthetic person and the nodes that hold a record.
type DemoPerson struct {
	NHSNumber string
	Holders   []string
}

// demoSeed fixes the demo's synthetic NHS numbers (the wasm module's
// generator, the one home of the Modulus 11 rule), so every run shows the
// same people.
const demoSeed = 1

// demoHolders decides who holds person i: overlapping patterns so that some
// people are known to one agency, many to two or three, some to all four,
// and every fifth to nobody yet (to add live in the demo).
func demoHolders(i int) []string {
	if i%5 == 4 {
		return nil
	}
	var hs []string
	if i%2 == 0 {
		hs = append(hs, DemoAgencies[0].NodeID)
	}
	if i%3 != 1 {
		hs = append(hs, DemoAgencies[1].NodeID)
	}
	hs = append(hs, DemoAgencies[2].NodeID)
	if i%4 == 0 {
		hs = append(hs, DemoAgencies[3].NodeID)
	}
	return hs
}

// StartDemo starts the demo federation: an authority created on the fly,
// four enrolled nodes on loopback (the first holds the issuer key), users on
// each, synthetic records imported through each node's import path, and
// waits until every replica holds every entry.
func StartDemo(ctx context.Context, dc DemoConfig) (_ *Demo, err error) {
	if dc.People == 0 {
		dc.People = 60
	}
	log := dc.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	keys, err := newDemoKeys()
	if err != nil {
		return nil, err
	}
	wc := wasm.DefaultConfig()
	wc.CacheDir = dc.WasmCacheDir
	rt, err := wasm.New(ctx, wc)
	if err != nil {
		return nil, err
	}
	d := &Demo{runtime: rt, Tokens: map[string]string{}, PractitionerTokens: map[string]string{}}
	defer func() {
		if err != nil {
			d.Shutdown(context.Background())
		}
	}()
	now := time.Now()
	var join []string
	for i := range DemoAgencies {
		s, err := d.startAgency(ctx, dc, keys, i, join, log)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			join = []string{s.Agent.GossipAddr()}
		}
	}
	log.Info("demo nodes started", "took", time.Since(now))
	if err := d.awaitMembership(ctx); err != nil {
		return nil, err
	}
	log.Info("demo membership converged", "took", time.Since(now))
	if err := d.importPeople(ctx, dc.People); err != nil {
		return nil, err
	}
	log.Info("demo records imported", "took", time.Since(now))
	if _, err := d.seedContactRequest(ctx); err != nil {
		log.Warn("demo: no contact request waiting", "err", err)
	}
	if err := d.awaitReplicas(ctx); err != nil {
		log.Warn("demo replicas not complete yet; anti-entropy will finish", "err", err)
	}
	log.Info("demo replicas complete", "took", time.Since(now))
	return d, nil
}

// demoKeys are the demo federation's secrets, made on the fly: its
// authority, gossip key and issuer key.
type demoKeys struct {
	authority *federation.Authority
	gossip    []byte
	issuer    []byte
}

func newDemoKeys() (demoKeys, error) {
	authority, err := federation.GenerateAuthority()
	if err != nil {
		return demoKeys{}, err
	}
	gossip := make([]byte, 32)
	rand.Read(gossip)
	issuer, err := wasm.GenerateIssuerKey()
	if err != nil {
		return demoKeys{}, err
	}
	return demoKeys{authority: authority, gossip: gossip, issuer: issuer}, nil
}

// startAgency enrols DemoAgencies[i] with the demo authority, starts its
// stack (the first holds the issuer key; the others join it) and adds the
// demo users and API tokens.
func (d *Demo) startAgency(ctx context.Context, dc DemoConfig, keys demoKeys, i int, join []string, log *slog.Logger) (*Stack, error) {
	a := DemoAgencies[i]
	now := time.Now()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sd, err := keys.authority.Enrol(federation.Descriptor{
		NodeID: a.NodeID, Agency: a.Agency, Category: a.Category, Purposes: a.Purposes, PublicKey: pub,
		NotBefore: now.Add(-time.Minute).Truncate(time.Second), Expires: now.Add(365 * 24 * time.Hour).Truncate(time.Second), Serial: uint64(i + 1),
	})
	if err != nil {
		return nil, fmt.Errorf("node: demo enrol %s: %w", a.NodeID, err)
	}
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.Agency, cfg.Category, cfg.Purposes = a.NodeID, a.Agency, a.Category, a.Purposes
	cfg.DataDir = filepath.Join(dc.Dir, a.NodeID)
	cfg.Listen = "127.0.0.1:0"
	if dc.BasePort != 0 {
		cfg.Listen = "127.0.0.1:" + strconv.Itoa(dc.BasePort+i)
	}
	cfg.Issuer = DemoAgencies[0].NodeID
	cfg.Contact = a.Agency + " duty desk, 01632 96000" + strconv.Itoa(i) + " (synthetic)"
	if a.NodeID == DemoReferAgency {
		cfg.ContactPolicy = "refer" // demo_contact.go
	}
	cfg.UserRate, cfg.UserBurst = 100, 1000
	sc := StackConfig{
		Node: cfg, AuthorityKey: keys.authority.PublicKey(),
		Credentials: &federation.Credentials{Descriptor: sd, PrivateKey: priv},
		GossipKeys:  [][]byte{keys.gossip}, GossipListen: "127.0.0.1:0", PeerListen: "127.0.0.1:0",
		Join: join, Runtime: d.runtime, Argon2: dc.Argon2, FastGossip: true, Logger: log.With("node", a.NodeID),
	}
	if i == 0 {
		sc.IssuerPrivateKey = keys.issuer
	} else {
		iss, _ := wasm.NewIssuer(keys.issuer)
		sc.IssuerPublicKey = iss.PublicKey()
	}
	s, err := StartStack(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("node: demo start %s: %w", a.NodeID, err)
	}
	d.Stacks = append(d.Stacks, s)
	st := s.Auth.Store()
	for _, r := range DemoUsers {
		if _, err := st.AddUser(r, auth.Role(r), []byte(DemoPassword)); err != nil && !errors.Is(err, auth.ErrExists) {
			return nil, err
		}
	}
	if tok, _, err := st.AddToken("demo-operator", auth.RoleOperator); err == nil {
		d.Tokens[a.NodeID] = tok
	}
	if tok, _, err := st.AddToken("demo-practitioner", auth.RolePractitioner); err == nil {
		d.PractitionerTokens[a.NodeID] = tok
	}
	return s, nil
}

// awaitMembership waits until every node sees every other alive: tokens of
// non-issuer nodes travel to the issuer over the peer transport, which
// needs its descriptor.
func (d *Demo) awaitMembership(ctx context.Context) error {
	err := waitFor(ctx, 30*time.Second, func() bool {
		for _, s := range d.Stacks {
			alive := 0
			for _, m := range s.Agent.Members() {
				if m.Alive {
					alive++
				}
			}
			if alive < len(d.Stacks)-1 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("node: demo membership did not converge: %w", err)
	}
	return nil
}

// importPeople makes the synthetic people (numbers from the wasm module's
// generator) and imports each agency's share through its node's CSV
// import, counting the entries that must reach every replica.
func (d *Demo) importPeople(ctx context.Context, people int) error {
	nums := wasm.GenerateTestNumbers(demoSeed, people)
	csv := map[string]*strings.Builder{}
	for i, n := range nums {
		hs := demoHolders(i)
		d.People = append(d.People, DemoPerson{NHSNumber: n, Holders: hs})
		for _, h := range hs {
			if csv[h] == nil {
				csv[h] = &strings.Builder{}
				csv[h].WriteString("localId,nhsNumber,category,retainUntil\n")
			}
			fmt.Fprintf(csv[h], "%s-%04d,%s,,\n", h, i, n)
		}
	}
	for i, s := range d.Stacks {
		b := csv[DemoAgencies[i].NodeID]
		if b == nil {
			continue
		}
		rep, err := s.Node.Import(ctx, strings.NewReader(b.String()), "token:demo", nil)
		if err != nil {
			return fmt.Errorf("node: demo import at %s: %w", DemoAgencies[i].NodeID, err)
		}
		if rep.Failed > 0 {
			return fmt.Errorf("node: demo import at %s: %d rows failed", DemoAgencies[i].NodeID, rep.Failed)
		}
		d.Entries += (rep.Imported + rep.Unchanged) * len(DemoAgencies[i].Purposes)
	}
	return nil
}

// awaitReplicas waits until every replica holds every demo entry.
func (d *Demo) awaitReplicas(ctx context.Context) error {
	return waitFor(ctx, 40*time.Second, func() bool {
		for _, s := range d.Stacks {
			if s.Agent.Store().Len() < d.Entries {
				return false
			}
		}
		return true
	})
}

func waitFor(ctx context.Context, limit time.Duration, ok func() bool) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Shutdown stops every node (HTTP, federation, audit) and the shared
// runtime. Idempotent.
func (d *Demo) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(d.Stacks) - 1; i >= 0; i-- {
		errs = append(errs, d.Stacks[i].Shutdown(ctx))
	}
	d.Stacks = nil
	if d.runtime != nil {
		errs = append(errs, d.runtime.Close(ctx))
		d.runtime = nil
	}
	return errors.Join(errs...)
}

// DemoMain is `signpost demo`.
func DemoMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the nodes' data (default: a new temporary directory, removed at exit)")
	port := fs.Int("port", 8470, "HTTP port of the first node on 127.0.0.1; the others follow (0: any free ports)")
	people := fs.Int("people", 60, "number of synthetic people (NHS numbers in the 999 test range)")
	verbose := fs.Bool("v", false, "log the nodes' operational messages to stderr")
	cacheFlag := fs.String(wasm.CacheFlag, "", wasm.CacheFlagUsage)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: signpost demo [flags]\n\nStarts a local federation of four agencies on loopback with synthetic records,\nprints the practitioner pages and logins, and runs until interrupted.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		tmp, err := os.MkdirTemp("", "signpost-demo-")
		if err != nil {
			fmt.Fprintln(stderr, "signpost demo:", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		*dir = tmp
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	start := time.Now()
	fmt.Fprintln(stdout, "Starting a local Signpost federation of four agencies…")
	// Compiled code is kept across runs: the second demo starts seconds sooner.
	cacheDir := wasm.CommandCacheDir(*cacheFlag, stderr)
	d, err := StartDemo(ctx, DemoConfig{Dir: *dir, BasePort: *port, People: *people, WasmCacheDir: cacheDir, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "signpost demo:", err)
		if *port != 0 {
			fmt.Fprintln(stderr, "(if a port is in use, try: signpost demo -port 0)")
		}
		return 1
	}
	d.printWelcome(stdout, time.Since(start))
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping…")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "signpost demo: shutdown:", err)
		return 1
	}
	fmt.Fprintln(stdout, "Stopped cleanly.")
	return 0
}

func display(n string) string { return n[:3] + " " + n[3:6] + " " + n[6:] }

func (d *Demo) printWelcome(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\nSignpost demo federation is up in %.1fs: %d agencies, %d synthetic people, %d entries replicated to every node.\n\n",
		took.Seconds(), len(d.Stacks), len(d.People), d.Entries)
	fmt.Fprintln(w, "Practitioner pages (open one in a browser):")
	for i, s := range d.Stacks {
		a := DemoAgencies[i]
		fmt.Fprintf(w, "  %-36s http://%s/   (%s)\n", a.Agency, s.Addr, strings.Join(a.Purposes, ", "))
	}
	fmt.Fprintf(w, "\nLogins on every node: %s — password %q for each.\n", strings.Join(DemoUsers, ", "), DemoPassword)
	fmt.Fprintln(w, "\nSynthetic NHS numbers to try (test range 999):")
	shown := 0
	for _, p := range d.People {
		if len(p.Holders) >= 3 && shown < 3 {
			fmt.Fprintf(w, "  %s  held by %s\n", display(p.NHSNumber), strings.Join(p.Holders, ", "))
			shown++
		}
	}
	for _, p := range d.People {
		if len(p.Holders) == 0 {
			fmt.Fprintf(w, "  %s  held by nobody yet — add a record at any node and watch the notice arrive\n", display(p.NHSNumber))
			break
		}
	}
	fmt.Fprintln(w, "  999 000 0013  has a wrong check digit: the page says why")
	if len(d.Stacks) > 1 {
		s := d.Stacks[2]
		var free string
		for _, p := range d.People {
			if !slices.Contains(p.Holders, DemoAgencies[2].NodeID) {
				free = p.NHSNumber
				break
			}
		}
		if free == "" {
			free = d.People[len(d.People)-1].NHSNumber
		}
		fmt.Fprintf(w, "\nAdd a record at %s from the command line (a live notice reaches anyone watching):\n", DemoAgencies[2].NodeID)
		fmt.Fprintf(w, "  curl -s -X POST http://%s/v1/records -H 'Authorization: Bearer %s' \\\n    -H 'Content-Type: application/json' -d '{\"localId\":\"demo-1\",\"nhsNumber\":\"%s\"}'\n",
			s.Addr, d.Tokens[DemoAgencies[2].NodeID], free)
	}
	if len(d.People) > 0 {
		fmt.Fprintf(w, "\nWho else is involved, asked by a system at %s:\n", DemoAgencies[0].NodeID)
		fmt.Fprintf(w, "  curl -s -X POST http://%s/v1/locate -H 'Authorization: Bearer %s' \\\n    -H 'Content-Type: application/json' -d '{\"nhsNumber\":\"%s\",\"purpose\":\"safeguarding\"}'\n",
			d.Stacks[0].Addr, d.PractitionerTokens[DemoAgencies[0].NodeID], d.People[0].NHSNumber)
	}
	d.printContactHelp(w)
	fmt.Fprintf(w, "\nAPI description: http://%s/v1/openapi.json — metrics: /metrics\n", d.Stacks[0].Addr)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

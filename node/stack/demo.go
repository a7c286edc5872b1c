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
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
)

// DemoAgency is one agency of the demo federation.
type DemoAgency struct {
	NodeID, Agency, Category string
	Purposes                 []string
}

// DemoAgencies are the demo's agencies: five kinds. The school is
// authorised for safeguarding only, to show the purpose firewall; the
// sexual-health clinic is shielded (DemoShielded).
var DemoAgencies = []DemoAgency{
	{"northshire-csc", "Northshire Children's Social Care", "children-social-care", []string{"direct-care", "safeguarding"}},
	{"riverside-school", "Riverside Primary School", "school", []string{"safeguarding"}},
	{"harbour-gp", "Harbour Lane GP Practice", "gp", []string{"direct-care", "safeguarding"}},
	{"city-ed", "City Hospital Emergency Department", "emergency-department", []string{"direct-care", "safeguarding"}},
	{"bay-sexual-health", "Bay Sexual Health Clinic", "sexual-health", []string{"direct-care", "safeguarding"}},
}

// DemoShielded is the demo's shielded service: its entries name its
// broker, DemoBroker, not the clinic, and contact requests reach it
// through the broker (DemoBroker's broker_for names it).
var (
	DemoShielded = DemoAgencies[4].NodeID
	DemoBroker   = DemoAgencies[0].NodeID
)

// DemoIssuers are the demo's token issuers, run by three different
// agencies: any DemoThreshold of them make tokens together, fewer cannot.
// Their keys are made by a DKG among them when the demo starts.
var DemoIssuers = []string{"northshire-csc", "harbour-gp", "city-ed"}

// DemoThreshold is t of the demo's t-of-n token keys.
const DemoThreshold = 2

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
	// Down names agencies (node ids) to stop once the federation is up,
	// so that a newcomer can see an outage (`signpost demo --down`).
	Down []string
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
	// Down are the agencies stopped after start (DemoConfig.Down).
	Down    []string
	runtime *wasm.Runtime
	// authority is the demo federation's authority (made on the fly); tests
	// sign key records with it as an operator's offline authority would.
	authority *federation.Authority
	// gossip is the demo federation's gossip key (tests add agencies).
	gossip []byte
}

// DemoPerson is a synthetic person and the nodes that hold a record:
// Holders are named to anyone with the token; Shielded (DemoShielded) are
// not.
type DemoPerson struct {
	NHSNumber string
	Holders   []string
	Shielded  []string
}

// demoSeed fixes the demo's synthetic NHS numbers (the wasm module's
// generator, the one home of the Modulus 11 rule), so every run shows the
// same people.
const demoSeed = 1

// demoHolders decides who holds person i: overlapping patterns so that some
// people are known to one agency, many to two or three, some to all four,
// and every fifth to nobody yet (to add live in the demo). The shielded
// clinic holds a few of those the others hold (demoShieldedHolders).
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

// demoShieldedHolders decides whether the shielded clinic holds person i:
// every sixth from the fourth (3, 9, 15, …), never person 0 or one nobody
// else holds.
func demoShieldedHolders(i int) []string {
	if i%6 != 3 || i%5 == 4 {
		return nil
	}
	return []string{DemoShielded}
}

// StartDemo starts the demo federation: an authority created on the fly,
// five enrolled nodes on loopback (one shielded), a DKG among the three issuers for each
// purpose (whose results the authority signs into key records), users on
// each node, synthetic records imported through each node's import path;
// it waits until every replica holds every entry, then stops the agencies
// named in dc.Down.
func StartDemo(ctx context.Context, dc DemoConfig) (_ *Demo, err error) {
	if dc.People == 0 {
		dc.People = 60
	}
	for _, id := range dc.Down {
		if !slices.ContainsFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == id }) {
			return nil, fmt.Errorf("node: demo: no agency %q to stop (the agencies: %s)", id, demoAgencyIDs())
		}
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
	d := &Demo{runtime: rt, Tokens: map[string]string{}, PractitionerTokens: map[string]string{}, authority: keys.authority, gossip: keys.gossip}
	defer func() {
		if err != nil {
			d.Shutdown(context.Background())
		}
	}()
	now := time.Now()
	var join []string
	for i := range DemoAgencies {
		s, err := d.startAgency(ctx, dc, keys, DemoAgencies[i], i, join, log)
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
	if err := d.makeKeys(ctx, keys.authority); err != nil {
		return nil, err
	}
	log.Info("demo token keys made by DKG", "took", time.Since(now))
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
	for i := len(d.Stacks) - 1; i >= 0; i-- {
		id := DemoAgencies[i].NodeID
		if slices.Contains(dc.Down, id) {
			if err := d.Stacks[i].Shutdown(ctx); err != nil {
				return nil, fmt.Errorf("node: demo: stop %s: %w", id, err)
			}
			d.Down = append(d.Down, id)
		}
	}
	return d, nil
}

func demoAgencyIDs() string {
	ids := make([]string, len(DemoAgencies))
	for i, a := range DemoAgencies {
		ids[i] = a.NodeID
	}
	return strings.Join(ids, ", ")
}

// demoPurposes are the purposes the demo makes keys for.
var demoPurposes = []string{"direct-care", "safeguarding"}

// makeKeys runs one DKG per purpose among DemoIssuers (the first starts
// it; the others join when its first message arrives), has the demo
// authority sign each result into a key record, and waits until every
// node has adopted every record. No process ever holds a whole key: each
// issuer's share stays in its own share directory.
func (d *Demo) makeKeys(ctx context.Context, authority *federation.Authority) error {
	var parts []dkg.Participant
	var initiator *Stack
	for _, id := range DemoIssuers {
		i := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == id })
		parts = append(parts, dkg.Participant{NodeID: id, Index: uint16(len(parts) + 1)})
		if initiator == nil {
			initiator = d.Stacks[i]
		}
	}
	start := time.Now()
	ids := make([]dkg.SessionID, len(demoPurposes))
	for i, p := range demoPurposes {
		id, err := initiator.Agent.StartDKG(ctx, dkg.Config{Purpose: p, Epoch: 1, T: DemoThreshold, Participants: parts,
			Start: start, PhaseTimeout: 5 * time.Second})
		if err != nil {
			return fmt.Errorf("node: demo: start the %s DKG: %w", p, err)
		}
		ids[i] = id
	}
	for i, id := range ids {
		var st federation.DKGStatus
		err := waitFor(ctx, 60*time.Second, func() bool {
			st, _ = initiator.Agent.DKGStatus(id)
			return st.Phase >= dkg.PhaseDone
		})
		if err != nil {
			return fmt.Errorf("node: demo: the %s DKG did not finish: %w", demoPurposes[i], err)
		}
		if st.Phase != dkg.PhaseDone || st.Err != "" {
			return fmt.Errorf("node: demo: the %s DKG failed: %s %s", demoPurposes[i], st.Reason, st.Err)
		}
		ks, err := federation.LoadDKGResult(st.ResultPath)
		if err != nil {
			return err
		}
		rec := federation.KeyRecordFromKeySet(ks)
		rec.Serial = 1
		rec.NotBefore = start.Add(-time.Minute).Truncate(time.Second)
		signed, err := authority.SignKeyRecord(rec)
		if err != nil {
			return fmt.Errorf("node: demo: sign the %s key record: %w", demoPurposes[i], err)
		}
		if err := initiator.Agent.SetKeyRecord(signed); err != nil {
			return fmt.Errorf("node: demo: adopt the %s key record: %w", demoPurposes[i], err)
		}
	}
	err := waitFor(ctx, 30*time.Second, func() bool {
		for _, s := range d.Stacks {
			if len(s.Agent.KeyRecords()) < len(demoPurposes) {
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("node: demo: key records did not reach every node: %w", err)
	}
	return nil
}

// demoKeys are the demo federation's secrets, made on the fly: its
// authority and gossip key. (Its token keys are made by the issuers' DKG.)
type demoKeys struct {
	authority *federation.Authority
	gossip    []byte
}

func newDemoKeys() (demoKeys, error) {
	authority, err := federation.GenerateAuthority()
	if err != nil {
		return demoKeys{}, err
	}
	gossip := make([]byte, 32)
	rand.Read(gossip)
	return demoKeys{authority: authority, gossip: gossip}, nil
}

// startAgency enrols agency a, the demo's i-th, with the demo authority,
// starts its stack (the first starts the federation; the others join it)
// and adds the demo users and API tokens.
func (d *Demo) startAgency(ctx context.Context, dc DemoConfig, keys demoKeys, a DemoAgency, i int, join []string, log *slog.Logger) (*Stack, error) {
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
	cfg.Contact = a.Agency + " duty desk, 01632 96000" + strconv.Itoa(i) + " (synthetic)"
	if a.NodeID == DemoReferAgency {
		cfg.ContactPolicy = "refer" // demo_contact.go
	}
	switch a.NodeID {
	case DemoShielded:
		cfg.Shielded, cfg.Broker, cfg.ContactPolicy = true, DemoBroker, "refer"
	case DemoBroker:
		cfg.BrokerFor = []string{DemoShielded}
	}
	cfg.UserRate, cfg.UserBurst = 100, 1000
	// API tokens do batch work (`signpost locate` over a file): the demo
	// lets them, with a quota of a few such runs a day.
	cfg.TokenRate, cfg.TokenBurst = 1000, 2000
	cfg.DailyTokenLookups = 200_000
	sc := StackConfig{
		Node: cfg, AuthorityKey: keys.authority.PublicKey(),
		Credentials: &federation.Credentials{Descriptor: sd, PrivateKey: priv},
		GossipKeys:  [][]byte{keys.gossip}, GossipListen: "127.0.0.1:0", PeerListen: "127.0.0.1:0",
		Join: join, Runtime: d.runtime, Argon2: dc.Argon2, FastGossip: true, Logger: log.With("node", a.NodeID),
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
		hs, sh := demoHolders(i), demoShieldedHolders(i)
		d.People = append(d.People, DemoPerson{NHSNumber: n, Holders: hs, Shielded: sh})
		for _, h := range slices.Concat(hs, sh) {
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
	down := fs.String("down", "", "comma-separated agencies (node ids) to stop once the federation is up, to see an outage\n(e.g. harbour-gp: one token issuer of three down, lookups go on; harbour-gp,city-ed: two down, no new lookups)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: signpost demo [flags]\n\nStarts a local federation of five agencies on loopback with synthetic records,\nprints the practitioner pages and logins, and runs until interrupted.")
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
	fmt.Fprintln(stdout, "Starting a local Signpost federation of five agencies…")
	// Compiled code is kept across runs: the second demo starts seconds sooner.
	cacheDir := wasm.CommandCacheDir(*cacheFlag, stderr)
	var downIDs []string
	if *down != "" {
		downIDs = strings.Split(*down, ",")
	}
	d, err := StartDemo(ctx, DemoConfig{Dir: *dir, BasePort: *port, People: *people, WasmCacheDir: cacheDir, Logger: log, Down: downIDs})
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

// running returns the index of the first running agency from order (node
// ids), or -1.
func (d *Demo) running(order ...string) int {
	for _, id := range order {
		if slices.Contains(d.Down, id) {
			continue
		}
		if i := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == id }); i >= 0 && i < len(d.Stacks) {
			return i
		}
	}
	return -1
}

func (d *Demo) printWelcome(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\nSignpost demo federation is up in %.1fs: %d agencies, %d synthetic people, %d entries replicated to every node.\n",
		took.Seconds(), len(d.Stacks), len(d.People), d.Entries)
	fmt.Fprintf(w, "Token issuers: %s — any %d of the %d make tokens together; no machine holds a whole key (made by a DKG just now).\n\n",
		strings.Join(DemoIssuers, ", "), DemoThreshold, len(DemoIssuers))
	if len(d.Down) > 0 {
		up := 0
		for _, id := range DemoIssuers {
			if !slices.Contains(d.Down, id) {
				up++
			}
		}
		fmt.Fprintf(w, "Stopped to show an outage (--down): %s. Token issuers running: %d of %d", strings.Join(d.Down, ", "), up, len(DemoIssuers))
		if up >= DemoThreshold {
			fmt.Fprintf(w, " — enough: lookups and new records work as usual.\n\n")
		} else {
			fmt.Fprintf(w, " — fewer than %d: new lookups answer 503 issuers_unavailable and the page says so;\nnew records are kept and published when an issuer returns.\n\n", DemoThreshold)
		}
	}
	fmt.Fprintln(w, "Practitioner pages (open one in a browser):")
	for i, s := range d.Stacks {
		a := DemoAgencies[i]
		if slices.Contains(d.Down, a.NodeID) {
			fmt.Fprintf(w, "  %-36s (stopped)\n", a.Agency)
			continue
		}
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
	if i := d.running(DemoAgencies[2].NodeID, DemoAgencies[3].NodeID, DemoAgencies[0].NodeID, DemoAgencies[1].NodeID); i >= 0 {
		s, id := d.Stacks[i], DemoAgencies[i].NodeID
		var free string
		for _, p := range d.People {
			if !slices.Contains(p.Holders, id) {
				free = p.NHSNumber
				break
			}
		}
		if free == "" {
			free = d.People[len(d.People)-1].NHSNumber
		}
		fmt.Fprintf(w, "\nAdd a record at %s from the command line (a live notice reaches anyone watching):\n", id)
		fmt.Fprintf(w, "  curl -s -X POST http://%s/v1/records -H 'Authorization: Bearer %s' \\\n    -H 'Content-Type: application/json' -d '{\"localId\":\"demo-1\",\"nhsNumber\":\"%s\"}'\n",
			s.Addr, d.Tokens[id], free)
	}
	if i := d.running(DemoAgencies[0].NodeID, DemoAgencies[1].NodeID, DemoAgencies[2].NodeID, DemoAgencies[3].NodeID); i >= 0 && len(d.People) > 0 {
		s, id := d.Stacks[i], DemoAgencies[i].NodeID
		fmt.Fprintf(w, "\nWho else is involved, asked by a system at %s:\n", id)
		fmt.Fprintf(w, "  curl -s -X POST http://%s/v1/locate -H 'Authorization: Bearer %s' \\\n    -H 'Content-Type: application/json' -d '{\"nhsNumber\":\"%s\",\"purpose\":\"safeguarding\"}'\n",
			s.Addr, d.PractitionerTokens[id], d.People[0].NHSNumber)
		fmt.Fprintf(w, "\nThe federation as %s sees it — members, token keys, each issuer's last answer (operator token):\n", id)
		fmt.Fprintf(w, "  curl -s http://%s/v1/federation -H 'Authorization: Bearer %s'\n", s.Addr, d.Tokens[id])
		fmt.Fprintf(w, "\nAPI description: http://%s/v1/openapi.json — metrics: /metrics\n", s.Addr)
	}
	d.printContactHelp(w)
	d.printShieldedHelp(w)
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

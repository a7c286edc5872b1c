package dkg

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

const phase = 10 * time.Second

// testConfig names n participants "issuer-1" … "issuer-n" at indices 1..n.
func testConfig(t, n int) Config {
	c := Config{Purpose: "safeguarding", Epoch: 7, T: t, Start: t0, PhaseTimeout: phase}
	for i := 1; i <= n; i++ {
		c.Participants = append(c.Participants, Participant{NodeID: fmt.Sprintf("issuer-%d", i), Index: uint16(i)})
	}
	return c
}

// seeded returns a deterministic random source per (seed, participant).
func seeded(seed uint64, who string) *rand.ChaCha8 {
	var k [32]byte
	binary.BigEndian.PutUint64(k[:], seed)
	copy(k[8:], who)
	return rand.NewChaCha8(k)
}

// network delivers every message of a set of sessions, in order, through
// its encoding, on an explicit clock. Hooks model crashed and malicious
// participants.
type network struct {
	t        testing.TB
	now      time.Time
	sessions map[string]*Session
	queue    []envelope
	// wire holds every encoded message that was sent.
	wire [][]byte
	// crashAfter: the participant stops after sending its message of that
	// kind (0: before its hello).
	crashAfter map[string]Kind
	crashed    map[string]bool
	// tamper may replace (or drop, returning nil) a message from → to.
	tamper  func(from, to string, m *Message) *Message
	refused []error
}

type envelope struct {
	from, to string
	enc      []byte
}

func newNetwork(t testing.TB) *network {
	return &network{t: t, now: t0, sessions: map[string]*Session{}, crashAfter: map[string]Kind{}, crashed: map[string]bool{}}
}

// start creates every participant's session (New or NewReshare via mk)
// and sends their hellos.
func (w *network) start(names []string, mk func(name string) (*Session, []Message, error)) {
	w.t.Helper()
	for _, name := range names {
		if k, ok := w.crashAfter[name]; ok && k == 0 {
			w.crashed[name] = true
			continue
		}
		s, out, err := mk(name)
		if err != nil {
			w.t.Fatalf("start %s: %v", name, err)
		}
		w.sessions[name] = s
		w.send(name, out)
	}
}

func (w *network) send(from string, ms []Message) {
	s := w.sessions[from]
	for _, m := range ms {
		if w.crashed[from] {
			return
		}
		if k, ok := w.crashAfter[from]; ok && m.Kind > k {
			w.crashed[from] = true
			return
		}
		for _, to := range s.Peers() {
			mm := &m
			if w.tamper != nil {
				if mm = w.tamper(from, to, mm); mm == nil {
					continue
				}
			}
			enc := mm.Encode()
			w.wire = append(w.wire, enc)
			w.queue = append(w.queue, envelope{from, to, enc})
		}
	}
}

func (w *network) deliver() {
	for len(w.queue) > 0 {
		e := w.queue[0]
		w.queue = w.queue[1:]
		s := w.sessions[e.to]
		if s == nil || w.crashed[e.to] {
			continue
		}
		m, err := DecodeMessage(e.enc)
		if err != nil {
			w.t.Fatalf("message %s→%s does not decode: %v", e.from, e.to, err)
		}
		out, err := s.Handle(e.from, m, w.now)
		if err != nil {
			w.refused = append(w.refused, err)
		}
		w.send(e.to, out)
	}
}

// run delivers and ticks until every live session is final.
func (w *network) run() {
	w.t.Helper()
	for range 100 {
		w.deliver()
		next := time.Time{}
		for name, s := range w.sessions {
			if w.crashed[name] {
				continue
			}
			if d := s.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if next.IsZero() {
			return
		}
		if next.After(w.now) {
			w.now = next
		}
		for _, name := range slices.Sorted(maps.Keys(w.sessions)) {
			if !w.crashed[name] {
				w.send(name, w.sessions[name].Tick(w.now))
			}
		}
	}
	w.t.Fatal("sessions did not finish")
}

// live returns the sessions of participants that did not crash, sorted.
func (w *network) live() []*Session {
	var ss []*Session
	for _, name := range slices.Sorted(maps.Keys(w.sessions)) {
		if !w.crashed[name] {
			ss = append(ss, w.sessions[name])
		}
	}
	return ss
}

// results checks that every live session in names finished with the same
// key set, and returns it with the shares.
func (w *network) results(names ...string) (*KeySet, []*Share) {
	w.t.Helper()
	var ks *KeySet
	var shares []*Share
	for _, name := range names {
		s := w.sessions[name]
		r, err := s.Result()
		if err != nil {
			w.t.Fatalf("%s: %v (status %+v)", name, err, s.Status())
		}
		if ks == nil {
			ks = &r.KeySet
		} else if !bytes.Equal(ks.Encode(), r.KeySet.Encode()) {
			w.t.Fatalf("%s's key set differs from %s's", name, names[0])
		}
		if err := r.KeySet.Validate(); err != nil {
			w.t.Fatalf("%s's key set: %v", name, err)
		}
		if r.Share != nil {
			pk, err := r.Share.PublicKey()
			if err != nil {
				w.t.Fatal(err)
			}
			i := slices.IndexFunc(r.Issuers, func(p PublicShare) bool { return p.NodeID == name })
			if i < 0 || !bytes.Equal(r.Issuers[i].Key, pk) || r.Issuers[i].Index != r.Share.Index {
				w.t.Fatalf("%s's share does not match its public share in the key set", name)
			}
			shares = append(shares, r.Share)
		}
	}
	return ks, shares
}

// reconstruct recovers k from every t-subset of shares — INSIDE THE TEST
// ONLY — checks they agree and that k·G is the group key, and returns k.
func reconstruct(t *testing.T, ks *KeySet, shares []*Share) group.Scalar {
	t.Helper()
	if len(shares) < ks.T {
		t.Fatalf("%d shares, t = %d", len(shares), ks.T)
	}
	var k group.Scalar
	for _, subset := range subsets(len(shares), ks.T) {
		var ss []secretsharing.Share
		for _, i := range subset {
			v, err := shares[i].scalar()
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, secretsharing.Share{ID: idScalar(shares[i].Index), Value: v})
		}
		got, err := secretsharing.Recover(uint(ks.T-1), ss)
		if err != nil {
			t.Fatal(err)
		}
		if k == nil {
			k = got
		} else if !k.IsEqual(got) {
			t.Fatalf("subset %v reconstructs another key", subset)
		}
	}
	if !bytes.Equal(elementBytes(g.NewElement().MulGen(k)), ks.GroupKey) {
		t.Fatal("k·G is not the group key")
	}
	if len(shares) > ks.T-1 && ks.T > 1 {
		// t−1 shares interpolate to something else.
		var ss []secretsharing.Share
		for _, sh := range shares[:ks.T-1] {
			v, _ := sh.scalar()
			ss = append(ss, secretsharing.Share{ID: idScalar(sh.Index), Value: v})
		}
		ss = append(ss, secretsharing.Share{ID: idScalar(60000), Value: g.NewScalar()})
		if other, _ := secretsharing.Recover(uint(ks.T-1), ss); other.IsEqual(k) {
			t.Fatal("t−1 shares and a guess gave k")
		}
	}
	return k
}

// subsets lists every k-subset of 0..n-1.
func subsets(n, k int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			out = append(out, slices.Clone(cur))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	return out
}

// secretForms are the ways k could appear in bytes: raw (both byte
// orders), hex (both cases) and base64 (every alphabet, padded or not).
func secretForms(k group.Scalar) [][]byte {
	raw := scalarBytes(k)
	rev := slices.Clone(raw)
	slices.Reverse(rev)
	var forms [][]byte
	for _, r := range [][]byte{raw, rev} {
		forms = append(forms, r,
			[]byte(hex.EncodeToString(r)), []byte(strings.ToUpper(hex.EncodeToString(r))),
			[]byte(base64.StdEncoding.EncodeToString(r)), []byte(base64.RawStdEncoding.EncodeToString(r)),
			[]byte(base64.URLEncoding.EncodeToString(r)), []byte(base64.RawURLEncoding.EncodeToString(r)))
	}
	return forms
}

// assertAbsent fails if any blob contains k in any form.
func assertAbsent(t *testing.T, k group.Scalar, what string, blobs [][]byte) {
	t.Helper()
	for _, f := range secretForms(k) {
		for i, b := range blobs {
			if bytes.Contains(b, f) {
				t.Fatalf("%s %d contains the key k", what, i)
			}
		}
	}
}

func names(n int) []string {
	var ns []string
	for i := 1; i <= n; i++ {
		ns = append(ns, fmt.Sprintf("issuer-%d", i))
	}
	return ns
}

func freshStarter(cfg Config, seed uint64) func(string) (*Session, []Message, error) {
	return func(name string) (*Session, []Message, error) { return New(cfg, name, seeded(seed, name)) }
}

func seed(t *testing.T) uint64 { return testutil.Seed(t) }

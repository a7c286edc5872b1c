package dkg

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// TestHonestRun: every participant finishes with the same key set, every
// t-subset of shares reconstructs the same k with k·G = K (in the test
// only), and no message and no encoded result contains k.
func TestHonestRun(t *testing.T) {
	for _, tc := range []struct{ t, n int }{{1, 1}, {2, 3}, {3, 5}, {3, 3}} {
		t.Run(fmtTN(tc.t, tc.n), func(t *testing.T) {
			s := seed(t)
			cfg := testConfig(tc.t, tc.n)
			w := newNetwork(t)
			w.start(names(tc.n), freshStarter(cfg, s))
			w.run()
			ks, shares := w.results(names(tc.n)...)
			if len(ks.Issuers) != tc.n || len(shares) != tc.n || ks.T != tc.t {
				t.Fatalf("%d issuers, %d shares, t = %d; want n = %d, t = %d", len(ks.Issuers), len(shares), ks.T, tc.n, tc.t)
			}
			if ks.Session != cfg.ID() || ks.Purpose != cfg.Purpose || ks.Epoch != cfg.Epoch {
				t.Fatalf("key set names session %s (%s, %d)", ks.Session, ks.Purpose, ks.Epoch)
			}
			for _, ss := range w.live() {
				st := ss.Status()
				if st.Phase != PhaseDone || len(st.Excluded) != 0 || len(st.Unconfirmed) != 0 || len(st.Holders) != tc.n {
					t.Fatalf("status %+v", st)
				}
			}
			// No deadline had to pass: an honest run finishes on messages.
			if !w.now.Equal(t0) {
				t.Fatalf("honest run waited until %v", w.now)
			}
			k := reconstruct(t, ks, shares)
			assertAbsent(t, k, "message", w.wire)
			var files [][]byte
			if tc.t > 1 { // with t = 1 every share is k itself, by definition
				for _, sh := range shares {
					files = append(files, sh.Encode())
				}
			}
			files = append(files, ks.Encode())
			assertAbsent(t, k, "result file", files)
			if len(w.refused) != 0 {
				t.Fatalf("refused messages: %v", w.refused)
			}
		})
	}
}

func fmtTN(t, n int) string { return "t" + string(rune('0'+t)) + "n" + string(rune('0'+n)) }

// badShare replaces dealer's sealed share for recipient by a sealed random
// scalar that does not match the dealer's commitments.
func badShare(t *testing.T, w *network, dealer, recipient string, m *Message) *Message {
	t.Helper()
	s := w.sessions[dealer]
	r := s.byID[recipient]
	mm := *m
	mm.Shares = slices.Clone(m.Shares)
	for i := range mm.Shares {
		if mm.Shares[i].Index == r.recvIndex {
			v := g.RandomScalar(nil)
			ct, err := hpke.Seal(r.hpkeKey, hpkeKDF, hpkeAEAD, shareInfo(s.id, s.self.dealIndex, r.recvIndex), scalarBytes(v))
			if err != nil {
				t.Fatal(err)
			}
			mm.Shares[i].Data = ct
		}
	}
	return &mm
}

// TestBadDealerDisqualified: a dealer sends one recipient a share that does
// not match its commitments, and then either does not justify or justifies
// with a share that does not match either. It is disqualified; the others
// agree on one key without it.
func TestBadDealerDisqualified(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		justify      func(t *testing.T, m *Message) *Message
	}{
		{"no justification", "sent no justification", func(*testing.T, *Message) *Message { return nil }},
		{"false justification", "does not match its commitments", func(t *testing.T, m *Message) *Message {
			mm := *m
			mm.Shares = slices.Clone(m.Shares)
			mm.Shares[0].Data = scalarBytes(g.RandomScalar(nil))
			return &mm
		}},
	} {
		for _, tn := range []struct{ t, n int }{{2, 3}, {3, 5}} {
			t.Run(tc.name+"/"+fmtTN(tn.t, tn.n), func(t *testing.T) {
				s := seed(t)
				w := newNetwork(t)
				const bad, victim = "issuer-2", "issuer-1"
				w.tamper = func(from, to string, m *Message) *Message {
					if from != bad {
						return m
					}
					switch {
					case m.Kind == KindDeal && to == victim:
						return badShare(t, w, bad, victim, m)
					case m.Kind == KindJustification:
						return tc.justify(t, m)
					}
					return m
				}
				w.start(names(tn.n), freshStarter(testConfig(tn.t, tn.n), s))
				w.run()
				honest := slices.DeleteFunc(names(tn.n), func(s string) bool { return s == bad })
				ks, shares := w.results(honest...)
				for _, is := range ks.Issuers {
					if is.NodeID == bad {
						t.Fatal("the bad dealer holds a share of the key")
					}
				}
				if len(ks.Issuers) != tn.n-1 {
					t.Fatalf("%d issuers, want %d", len(ks.Issuers), tn.n-1)
				}
				for _, name := range honest {
					st := w.sessions[name].Status()
					if len(st.Excluded) != 1 || st.Excluded[0].NodeID != bad || !strings.Contains(st.Excluded[0].Reason, tc.reason) {
						t.Fatalf("%s: excluded %+v, want %s for %q", name, st.Excluded, bad, tc.reason)
					}
				}
				k := reconstruct(t, ks, shares)
				assertAbsent(t, k, "message", w.wire)
			})
		}
	}
}

// TestFalseComplaintDismissed: a malicious participant complains about an
// honest dealer; the dealer's justification answers it and the dealer stays.
func TestFalseComplaintDismissed(t *testing.T) {
	s := seed(t)
	w := newNetwork(t)
	const liar, honest = "issuer-3", "issuer-1"
	w.tamper = func(from, to string, m *Message) *Message {
		if from == liar && m.Kind == KindComplaints {
			mm := *m
			mm.Accused = []uint16{1}
			return &mm
		}
		return m
	}
	w.start(names(3), freshStarter(testConfig(2, 3), s))
	w.run()
	ks, shares := w.results(names(3)...)
	if len(ks.Issuers) != 3 {
		t.Fatalf("%d issuers, want 3", len(ks.Issuers))
	}
	for _, ss := range w.live() {
		if st := ss.Status(); len(st.Excluded) != 0 {
			t.Fatalf("excluded %+v", st.Excluded)
		}
	}
	// The justification went out: the honest dealer revealed the liar's
	// share, which is the liar's own business, not k.
	sawJustification := false
	for _, b := range w.wire {
		if m, _ := DecodeMessage(b); m.Kind == KindJustification {
			sawJustification = true
		}
	}
	if !sawJustification {
		t.Fatalf("%s never justified", honest)
	}
	k := reconstruct(t, ks, shares)
	assertAbsent(t, k, "message", w.wire)
}

// TestCrash: a participant that stops before its hello, after it, or after
// its deal; the others finish without it when t can still be met, and
// otherwise abort with a status that names it.
func TestCrash(t *testing.T) {
	for _, tc := range []struct {
		name      string
		t, n      int
		after     Kind
		done      bool
		excluded  string // reason the crashed participant is excluded for
		unconfirm bool   // the crashed participant is listed as unconfirmed
		abort     string
	}{
		{name: "before hello", t: 2, n: 3, after: 0, done: true, excluded: "no hello"},
		{name: "before hello", t: 3, n: 3, after: 0, abort: "no hello from issuer-2"},
		{name: "after hello", t: 2, n: 3, after: KindHello, done: true, excluded: "sent no deal"},
		{name: "after hello", t: 3, n: 5, after: KindHello, done: true, excluded: "sent no deal"},
		{name: "after hello", t: 3, n: 3, after: KindHello, abort: "2 qualified dealers, at least 3 are needed; disqualified: issuer-2"},
		{name: "after deal", t: 2, n: 3, after: KindDeal, done: true, unconfirm: true},
		{name: "after deal", t: 3, n: 3, after: KindDeal, abort: "2 participants confirmed the key, at least t = 3 are needed (unconfirmed: issuer-2)"},
	} {
		t.Run(tc.name+"/"+fmtTN(tc.t, tc.n), func(t *testing.T) {
			s := seed(t)
			w := newNetwork(t)
			const crash = "issuer-2"
			w.crashAfter[crash] = tc.after
			w.start(names(tc.n), freshStarter(testConfig(tc.t, tc.n), s))
			w.run()
			others := slices.DeleteFunc(names(tc.n), func(s string) bool { return s == crash })
			if !tc.done {
				for _, name := range others {
					st := w.sessions[name].Status()
					_, err := w.sessions[name].Result()
					if st.Phase != PhaseAborted || !errors.Is(err, ErrAborted) || !strings.Contains(st.Reason, tc.abort) {
						t.Fatalf("%s: phase %s, reason %q, err %v; want abort %q", name, st.Phase, st.Reason, err, tc.abort)
					}
				}
				return
			}
			ks, shares := w.results(others...)
			for _, is := range ks.Issuers {
				if is.NodeID == crash {
					t.Fatal("the crashed participant is listed as an issuer")
				}
			}
			for _, name := range others {
				st := w.sessions[name].Status()
				if tc.excluded != "" && (len(st.Excluded) != 1 || st.Excluded[0].NodeID != crash || !strings.Contains(st.Excluded[0].Reason, tc.excluded)) {
					t.Fatalf("%s: excluded %+v, want %s (%s)", name, st.Excluded, crash, tc.excluded)
				}
				if tc.unconfirm != slices.Equal(st.Unconfirmed, []string{crash}) {
					t.Fatalf("%s: unconfirmed %v", name, st.Unconfirmed)
				}
			}
			k := reconstruct(t, ks, shares)
			assertAbsent(t, k, "message", w.wire)
		})
	}
}

// TestEquivocationCaught: a dealer sends one recipient a deal with other
// commitments (a second, self-consistent polynomial). Every share verifies
// against what its recipient saw; the confirmation round catches it and
// every honest participant aborts.
func TestEquivocationCaught(t *testing.T) {
	s := seed(t)
	cfg := testConfig(2, 3)
	w := newNetwork(t)
	const bad, fooled = "issuer-2", "issuer-3"
	twin, _, err := New(cfg, bad, seeded(s+1, bad))
	if err != nil {
		t.Fatal(err)
	}
	var twinDeal *Message
	w.tamper = func(from, to string, m *Message) *Message {
		if from == bad && m.Kind == KindDeal && to == fooled {
			if twinDeal == nil {
				t.Fatal("the twin has not dealt")
			}
			return twinDeal
		}
		return m
	}
	w.start(names(3), freshStarter(cfg, s))
	// The twin hears every hello the real dealer will, and deals.
	for _, e := range w.queue {
		if e.to == bad {
			m, _ := DecodeMessage(e.enc)
			if out, _ := twin.Handle(e.from, m, w.now); len(out) > 0 {
				twinDeal = &out[0]
			}
		}
	}
	w.run()
	for _, name := range names(3) {
		st := w.sessions[name].Status()
		if st.Phase != PhaseAborted || !strings.Contains(st.Reason, "differs") {
			t.Fatalf("%s: phase %s, reason %q; want an abort on the confirmation", name, st.Phase, st.Reason)
		}
	}
}

// TestReshare moves a t=2, n=3 key to a t=3, n=4 set in which one old
// holder leaves and two nodes join; K is unchanged, the new shares
// reconstruct the same k (in the test), and the leaving holder gets none.
func TestReshare(t *testing.T) {
	s := seed(t)
	w := newNetwork(t)
	w.start(names(3), freshStarter(testConfig(2, 3), s))
	w.run()
	ks, shares := w.results(names(3)...)
	k := reconstruct(t, ks, shares)
	old := map[string]*Share{}
	for _, sh := range shares {
		old[sh.NodeID] = sh
	}

	for _, tc := range []struct {
		name      string
		crash     string // an old holder that never answers
		tamperC0  bool   // issuer-1 deals a secret other than its share
		wantOut   string
		abort     string
		newT      int
		newNames  []string
		newIndexs []uint16
	}{
		{name: "leave and join", newT: 3, newNames: []string{"issuer-2", "issuer-3", "issuer-4", "issuer-5"}, newIndexs: []uint16{1, 2, 3, 4}},
		{name: "one old holder down", crash: "issuer-1", wantOut: "no hello", newT: 2, newNames: []string{"issuer-2", "issuer-3", "issuer-4"}, newIndexs: []uint16{4, 5, 6}},
		{name: "dealer changes secret", tamperC0: true, wantOut: "C_0", newT: 2, newNames: []string{"issuer-1", "issuer-2", "issuer-3"}, newIndexs: []uint16{1, 2, 3}},
		{name: "too few old holders", crash: "issuer-1", tamperC0: true, abort: "1 qualified dealers, at least 2 are needed", newT: 2, newNames: []string{"issuer-2", "issuer-3", "issuer-4"}, newIndexs: []uint16{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Purpose: ks.Purpose, Epoch: ks.Epoch, T: tc.newT, Start: t0.Add(time.Hour), PhaseTimeout: phase,
				Reshare: &ReshareFrom{T: ks.T, Holders: ks.Issuers, GroupKey: ks.GroupKey}}
			for i, n := range tc.newNames {
				cfg.Participants = append(cfg.Participants, Participant{NodeID: n, Index: tc.newIndexs[i]})
			}
			w := newNetwork(t)
			w.now = cfg.Start
			if tc.crash != "" {
				w.crashAfter[tc.crash] = 0
			}
			cheat := "issuer-1"
			if tc.crash == cheat {
				cheat = "issuer-2"
			}
			if tc.tamperC0 {
				w.tamper = func(from, to string, m *Message) *Message {
					if from == cheat && m.Kind == KindDeal {
						mm := *m
						mm.Commitments = slices.Clone(m.Commitments)
						mm.Commitments[0] = elementBytes(g.NewElement().MulGen(g.RandomScalar(nil)))
						return &mm
					}
					return m
				}
			}
			all := slices.Sorted(slices.Values(slices.Compact(slices.Sorted(slices.Values(append(names(3), tc.newNames...))))))
			w.start(all, func(name string) (*Session, []Message, error) {
				return NewReshare(cfg, name, old[name], seeded(s+7, name))
			})
			w.run()
			var live []string
			for _, n := range all {
				if n != tc.crash {
					live = append(live, n)
				}
			}
			if tc.abort != "" {
				for _, n := range live {
					if tc.tamperC0 && n == cheat {
						continue // a cheat's own view is not the honest one
					}
					if st := w.sessions[n].Status(); st.Phase != PhaseAborted || !strings.Contains(st.Reason, tc.abort) {
						t.Fatalf("%s: %s %q, want abort %q", n, st.Phase, st.Reason, tc.abort)
					}
				}
				return
			}
			holders := slices.Clone(tc.newNames)
			if tc.tamperC0 {
				live = slices.DeleteFunc(live, func(s string) bool { return s == cheat })
				holders = slices.DeleteFunc(holders, func(s string) bool { return s == cheat })
			}
			nks, nshares := w.results(live...)
			if !bytes.Equal(nks.GroupKey, ks.GroupKey) {
				t.Fatal("the reshare changed the group key")
			}
			if nks.T != tc.newT || len(nks.Issuers) != len(holders) || len(nshares) != len(holders) {
				t.Fatalf("t = %d, %d issuers, %d shares", nks.T, len(nks.Issuers), len(nshares))
			}
			for _, sh := range nshares {
				if !slices.Contains(holders, sh.NodeID) {
					t.Fatalf("%s holds a share but is not in the new set", sh.NodeID)
				}
			}
			if k2 := reconstruct(t, nks, nshares); !k2.IsEqual(k) {
				t.Fatal("the new shares reconstruct another key")
			}
			assertAbsent(t, k, "message", w.wire)
			if tc.wantOut != "" {
				who := tc.crash
				if tc.tamperC0 {
					who = cheat
				}
				for _, n := range live {
					st := w.sessions[n].Status()
					if !slices.ContainsFunc(st.Excluded, func(e Exclusion) bool { return e.NodeID == who && strings.Contains(e.Reason, tc.wantOut) }) {
						t.Fatalf("%s: excluded %+v, want %s (%s)", n, st.Excluded, who, tc.wantOut)
					}
				}
			}
		})
	}
}

// TestShareErase: Erase zeroes the share in place.
func TestShareErase(t *testing.T) {
	sh := &Share{Value: scalarBytes(g.RandomScalar(nil))}
	sh.Erase()
	if !bytes.Equal(sh.Value, make([]byte, scalarSize)) {
		t.Fatal("share not erased")
	}
}

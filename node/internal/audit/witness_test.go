package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// signedHeads appends n events to a fresh log signed by testKey, the i-th
// with actor actors(i), and returns the log and the head after each.
func signedHeads(t *testing.T, n int, actor func(i int) string) (*Log, []TreeHead) {
	t.Helper()
	l, _ := openTest(t, testKey)
	heads := []TreeHead{{Root: emptyRoot}}
	for i := 0; i < n; i++ {
		r, err := l.Append(Event{Actor: actor(i), Action: ActionLookup, Outcome: OutcomeOK})
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, r.Head)
	}
	return l, heads
}

func offerOf(t *testing.T, l *Log, h TreeHead, from uint64) HeadOffer {
	t.Helper()
	o := HeadOffer{TreeHead: h, From: from}
	if from > 0 {
		p, err := l.ConsistencyProof(from, h.Size)
		if err != nil {
			t.Fatal(err)
		}
		o.Proof = p
	}
	return o
}

// TestWitnessOffers: a witness keeps the latest head that extends the one it
// holds, asks for a proof when it has none, and refuses — keeping the
// evidence once, and its own head — a head that is smaller, has another
// root at the same size or fails its proof; a head not signed by the
// node's key leaves no trace. A reopened witness holds the same.
func TestWitnessOffers(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	l, heads := signedHeads(t, 9, func(int) string { return "user:alice" })
	fork, forkHeads := signedHeads(t, 9, func(i int) string {
		if i == 4 {
			return "user:mallory"
		}
		return "user:alice"
	})
	path := filepath.Join(t.TempDir(), WitnessFileName)
	clock := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	w, err := OpenWitness(path, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		offer HeadOffer
		want  OfferResult
		forks int
	}{
		{"first head", offerOf(t, l, heads[3], 0), OfferResult{OfferAccepted, 3}, 0},
		{"larger head without a proof", offerOf(t, l, heads[6], 0), OfferResult{OfferNeedProof, 3}, 0},
		{"larger head with a proof from another size", offerOf(t, l, heads[6], 2), OfferResult{OfferNeedProof, 3}, 0},
		{"larger head with its proof", offerOf(t, l, heads[6], 3), OfferResult{OfferAccepted, 6}, 0},
		{"the same head again", offerOf(t, l, heads[6], 0), OfferResult{OfferAccepted, 6}, 0},
		{"a smaller head (truncated)", offerOf(t, l, heads[4], 0), OfferResult{OfferInconsistent, 6}, 1},
		{"the same smaller head again", offerOf(t, l, heads[4], 0), OfferResult{OfferInconsistent, 6}, 1},
		{"another root at the same size (fork)", offerOf(t, fork, forkHeads[6], 0), OfferResult{OfferInconsistent, 6}, 2},
		{"a forked head with its own proof", offerOf(t, fork, forkHeads[8], 6), OfferResult{OfferInconsistent, 6}, 3},
		{"the true extension still goes on", offerOf(t, l, heads[9], 6), OfferResult{OfferAccepted, 9}, 3},
	}
	for _, s := range steps {
		got, err := w.Offer("node-gp", pub, s.offer)
		if err != nil || got != s.want {
			t.Fatalf("%s: got %+v %v, want %+v", s.name, got, err, s.want)
		}
		h, _ := w.Held("node-gp")
		if len(h.Forks) != s.forks {
			t.Fatalf("%s: %d forks recorded, want %d", s.name, len(h.Forks), s.forks)
		}
	}
	// Forks keep both heads, signed: evidence a third party can check.
	h, _ := w.Held("node-gp")
	for _, f := range h.Forks {
		if f.Held.VerifySignature(pub) != nil || f.Offered.VerifySignature(pub) != nil || f.Reason == "" {
			t.Fatalf("fork evidence incomplete: %+v", f)
		}
	}

	// Not the node's signature: refused, nothing recorded.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	forged := heads[9]
	forged.Size, forged.Sig = 1000, ed25519.Sign(other, TreeHead{Size: 1000, Root: forged.Root}.Checkpoint())
	if _, err := w.Offer("node-gp", pub, HeadOffer{TreeHead: forged}); !errors.Is(err, ErrBadOffer) {
		t.Fatalf("forged offer: %v", err)
	}
	if _, err := w.Offer("node-school", pub, HeadOffer{TreeHead: TreeHead{Size: 3, Root: heads[3].Root}}); !errors.Is(err, ErrBadOffer) {
		t.Fatalf("unsigned offer: %v", err)
	}
	if _, ok := w.Held("node-school"); ok {
		t.Fatal("an unsigned offer was recorded")
	}

	// A restart keeps every head and all the evidence.
	w2, err := OpenWitness(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2, ok := w2.Held("node-gp")
	if !ok || h2.Size != 9 || h2.Root != heads[9].Root || len(h2.Forks) != 3 || !h2.Time.Equal(clock) {
		t.Fatalf("after reopening: %+v", h2)
	}
	if got := w2.All(); len(got) != 1 || got[0].Node != "node-gp" {
		t.Fatalf("All: %+v", got)
	}
}

func TestDecodeHeadOffer(t *testing.T) {
	good := `{"size":6,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `","from":3,"proof":["` + emptyRoot.String() + `"]}`
	if _, err := DecodeHeadOffer([]byte(good)); err != nil {
		t.Fatalf("good offer: %v", err)
	}
	for name, in := range map[string]string{
		"duplicate key":   `{"size":6,"size":7,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `"}`,
		"unknown field":   `{"size":6,"nhsNumber":"9990000018","root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `"}`,
		"trailing data":   good + `{}`,
		"size 0":          `{"size":0,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `"}`,
		"short signature": `{"size":6,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 63)) + `"}`,
		"from past size":  `{"size":6,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `","from":7}`,
		"proof, no from":  `{"size":6,"root":"` + emptyRoot.String() + `","sig":"` + b64(make([]byte, 64)) + `","proof":["` + emptyRoot.String() + `"]}`,
		"bad root":        `{"size":6,"root":"zz","sig":"` + b64(make([]byte, 64)) + `"}`,
		"not an object":   `[]`,
	} {
		if _, err := DecodeHeadOffer([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

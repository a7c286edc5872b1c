package federation

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/wasm"
)

// shareEvaluator is a wasm.ThresholdEvaluator over in-process share
// issuers: the key set of a signed record, and partials from the issuers
// given (a subset of the holders).
type shareEvaluator struct {
	ks      wasm.KeySet
	issuers []*wasm.ShareIssuer
}

func (e *shareEvaluator) KeySet(context.Context, string, uint32) (wasm.KeySet, error) {
	return e.ks, nil
}

func (e *shareEvaluator) EvaluatePartials(_ context.Context, _ string, _ uint32, blinded [][]byte) ([]wasm.Partial, error) {
	var ps []wasm.Partial
	for _, is := range e.issuers {
		p, err := is.Partial(blinded)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// tokensBySubset computes the tokens of numbers with every t-subset of the
// shares, through the threshold client, checks they agree, and returns
// them.
func tokensBySubset(t *testing.T, rec *KeyRecord, shares []*dkg.Share, numbers []string) [][]byte {
	t.Helper()
	ks := rec.WasmKeySet()
	if err := ks.Validate(); err != nil {
		t.Fatalf("the record's key set is not a valid client key set: %v", err)
	}
	var want [][]byte
	for _, sub := range indexSubsets(len(shares), rec.T) {
		ev := &shareEvaluator{ks: ks}
		for _, i := range sub {
			is, err := wasm.NewShareIssuer(shares[i].Index, shares[i].Value)
			if err != nil {
				t.Fatal(err)
			}
			if pub, _ := rec.Issuer(shares[i].NodeID); !bytes.Equal(is.PublicShare(), pub.PublicShare) {
				t.Fatalf("%s's share does not give its public share in the record", shares[i].NodeID)
			}
			ev.issuers = append(ev.issuers, is)
		}
		toks, err := wasm.NativeThresholdTokens(context.Background(), nil, ev, "nhs", numbers, rec.Purpose, rec.Epoch)
		if err != nil {
			t.Fatalf("issuers %v: %v", sub, err)
		}
		var got [][]byte
		for _, tk := range toks {
			got = append(got, tk.Token)
		}
		if want == nil {
			want = got
		} else if !slices.EqualFunc(want, got, bytes.Equal) {
			t.Fatalf("issuers %v give other tokens", sub)
		}
	}
	return want
}

func indexSubsets(n, k int) [][]int {
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

// TestDKGKeyGivesTokensAndReshareKeepsThem: a key made by the DKG works
// with the threshold token client (any t of its holders give the same
// tokens), and after a reshare to another issuer set and threshold every
// token is identical.
func TestDKGKeyGivesTokensAndReshareKeepsThem(t *testing.T) {
	a := mustAuthority(t)
	numbers := []string{"999 000 0018", "9990000026", "9990000050"}
	ks, shares := localDKG(t, 2, 3)
	rec := signedRecord(t, a, ks, 1)
	before := tokensBySubset(t, rec, shares, numbers)

	old := map[string]*dkg.Share{}
	for _, sh := range shares {
		old[sh.NodeID] = sh
	}
	cfg := dkg.Config{Purpose: ks.Purpose, Epoch: ks.Epoch, T: 3, Start: time.Now(), PhaseTimeout: time.Minute,
		Reshare: &dkg.ReshareFrom{T: ks.T, Holders: ks.Issuers, GroupKey: ks.GroupKey}}
	for i := 2; i <= 5; i++ { // node-1 leaves, node-4 and node-5 join
		cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: fmt.Sprintf("node-%d", i), Index: uint16(10 + i)})
	}
	nks, nshares := localRun(t, cfg, old)
	nrec := signedRecord(t, a, nks, 2)
	if len(nshares) != 4 || !bytes.Equal(nrec.GroupKey, rec.GroupKey) {
		t.Fatalf("%d new shares", len(nshares))
	}
	after := tokensBySubset(t, nrec, nshares, numbers)
	if !slices.EqualFunc(before, after, bytes.Equal) {
		t.Fatal("the reshare changed the tokens")
	}
	// A different key gives different tokens: the comparison can fail.
	oks, oshares := localDKG(t, 2, 3)
	if other := tokensBySubset(t, signedRecord(t, a, oks, 3), oshares, numbers); bytes.Equal(other[0], before[0]) {
		t.Fatal("two DKGs gave the same tokens")
	}
}

package token_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// seeded returns a reader that replays with the test's seed.
func seeded(t testing.TB) io.Reader {
	var key [32]byte
	s := testutil.Seed(t)
	for i := range 8 {
		key[i] = byte(s >> (8 * i))
	}
	return mrand.NewChaCha8(key)
}

var testInputs = [][]byte{
	[]byte("https://fhir.nhs.uk/Id/nhs-number|9990000018"),
	[]byte("https://fhir.nhs.uk/Id/nhs-number|9990000026"),
	[]byte("x"),
}

func deal(t testing.TB, rnd io.Reader, th, n int) tokentest.Dealt {
	t.Helper()
	d, err := tokentest.Deal(rnd, th, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := token.CheckKeySet(d.KeySet); err != nil {
		t.Fatalf("dealt key set refused: %v", err)
	}
	return d
}

func partials(t testing.TB, d tokentest.Dealt, blinded [][]byte, indices ...uint16) []token.Partial {
	t.Helper()
	out := make([]token.Partial, len(indices))
	for i, x := range indices {
		p, err := d.Partial(x, blinded)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// circlVOPRF is the reference: circl's own VOPRF server keyed with the
// whole k and its verifiable client for K, on the same blinds.
func circlVOPRF(t testing.TB, d tokentest.Dealt, inputs, blinds [][]byte) [][]byte {
	t.Helper()
	key := new(oprf.PrivateKey)
	if err := key.UnmarshalBinary(token.Suite, d.Key); err != nil {
		t.Fatal(err)
	}
	pub := new(oprf.PublicKey)
	if err := pub.UnmarshalBinary(token.Suite, d.KeySet.GroupKey); err != nil {
		t.Fatal(err)
	}
	scalars := make([]oprf.Blind, len(blinds))
	for i, b := range blinds {
		s := token.Suite.Group().NewScalar()
		if err := s.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		scalars[i] = s
	}
	client := oprf.NewVerifiableClient(token.Suite, pub)
	fd, req, err := client.DeterministicBlind(inputs, scalars)
	if err != nil {
		t.Fatal(err)
	}
	server := oprf.NewVerifiableServer(token.Suite, key)
	ev, err := server.Evaluate(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.Finalize(fd, ev)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		full, err := server.FullEvaluate(in)
		if err != nil || !bytes.Equal(full, out[i]) {
			t.Fatalf("circl's own VOPRF client and full evaluation disagree on input %d", i)
		}
	}
	return out
}

// subsets returns every subset of {1..n} of size k, in lexicographic order.
func subsets(n, k int) [][]uint16 {
	var out [][]uint16
	var rec func(start int, cur []uint16)
	rec = func(start int, cur []uint16) {
		if len(cur) == k {
			out = append(out, slices.Clone(cur))
			return
		}
		for x := start; x <= n; x++ {
			rec(x+1, append(cur, uint16(x)))
		}
	}
	rec(1, nil)
	return out
}

// TestThresholdEqualsCirclVOPRF is the acceptance test that the
// construction is standard: with the same k, every t-subset of shares
// (and every larger subset) combines to circl's own VOPRF output for k,
// bit for bit, and the blinded elements are circl's VOPRF-mode ones.
func TestThresholdEqualsCirclVOPRF(t *testing.T) {
	rnd := seeded(t)
	for _, tc := range []struct{ t, n int }{{1, 1}, {1, 3}, {2, 3}, {3, 5}, {5, 5}} {
		t.Run(fmt.Sprintf("t=%d,n=%d", tc.t, tc.n), func(t *testing.T) {
			d := deal(t, rnd, tc.t, tc.n)
			blinds, blinded, err := token.BlindVerifiable(rnd, testInputs)
			if err != nil {
				t.Fatal(err)
			}
			want := circlVOPRF(t, d, testInputs, blinds)
			all := make([]uint16, tc.n)
			for i := range all {
				all[i] = uint16(i + 1)
			}
			ps := partials(t, d, blinded, all...)
			for k := tc.t; k <= tc.n; k++ {
				for _, sub := range subsets(tc.n, k) {
					var given []token.Partial
					for _, x := range sub {
						given = append(given, ps[x-1])
					}
					for _, c := range combiners {
						got, err := c.combine(d.KeySet, testInputs, blinds, blinded, given)
						if err != nil {
							t.Fatalf("%s, shares %v: %v", c.name, sub, err)
						}
						for i := range want {
							if !bytes.Equal(got[i], want[i]) {
								t.Fatalf("%s, shares %v, input %d: threshold token differs from circl's VOPRF", c.name, sub, i)
							}
						}
					}
				}
			}
		})
	}
}

// combiners are the two ways to combine genuine partials: both must give
// circl's tokens.
var combiners = []struct {
	name    string
	combine func(ks token.KeySet, inputs, blinds, blinded [][]byte, partials []token.Partial) ([][]byte, error)
}{
	{"Combine", func(ks token.KeySet, inputs, blinds, _ [][]byte, ps []token.Partial) ([][]byte, error) {
		return token.Combine(ks, inputs, blinds, ps)
	}},
	{"CombineVerified", func(ks token.KeySet, inputs, blinds, _ [][]byte, ps []token.Partial) ([][]byte, error) {
		return token.CombineVerified(ks, inputs, blinds, ps)
	}},
	{"CombineBlinded", token.CombineBlinded},
}

// checking are the combiners that check every proof.
var checking = []string{"Combine", "CombineBlinded"}

// TestCombineVerifiedChecksNoProof states CombineVerified's contract: it
// skips what it can see is unusable (an unknown or repeated index, the
// wrong count, a malformed element) but takes a partial with a valid
// shape and a wrong value or proof as given — a wrong token, not an error —
// so only a caller that verified the partials may use it. Combine, given
// the same partials, refuses them.
func TestCombineVerifiedChecksNoProof(t *testing.T) {
	rnd := seeded(t)
	d := deal(t, rnd, 2, 3)
	blinds, blinded, err := token.BlindVerifiable(rnd, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	want := circlVOPRF(t, d, testInputs, blinds)
	ps := partials(t, d, blinded, 1, 2, 3)
	other := partials(t, d, blinded, 3)[0]
	wrongValue := ps[1]
	wrongValue.Evaluated = other.Evaluated // issuer 3's values under issuer 2's index
	got, err := token.CombineVerified(d.KeySet, testInputs, blinds, []token.Partial{ps[0], wrongValue})
	if err != nil {
		t.Fatalf("CombineVerified with a wrong value: %v, want a (wrong) token", err)
	}
	if bytes.Equal(got[0], want[0]) {
		t.Fatal("CombineVerified with a wrong value gave the right token")
	}
	if _, err := token.Combine(d.KeySet, testInputs, blinds, []token.Partial{ps[0], wrongValue}); !errors.Is(err, token.ErrTooFewPartials) {
		t.Fatalf("Combine with a wrong value: got %v, want ErrTooFewPartials", err)
	}
	short := ps[1]
	short.Evaluated = short.Evaluated[:1]
	garbled := ps[1]
	garbled.Evaluated = [][]byte{bytes.Repeat([]byte{0xff}, token.ElementSize), ps[1].Evaluated[1]}
	unknown := ps[1]
	unknown.Index = 9
	for name, bad := range map[string]token.Partial{"short": short, "garbled": garbled, "unknown index": unknown, "repeated": ps[0]} {
		// Skipped: with ps[2] after it, the genuine tokens come from 1 and 3.
		got, err := token.CombineVerified(d.KeySet, testInputs, blinds, []token.Partial{ps[0], bad, ps[2]})
		if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("%s partial was not skipped (%v)", name, err)
		}
		if _, err := token.CombineVerified(d.KeySet, testInputs, blinds, []token.Partial{ps[0], bad}); !errors.Is(err, token.ErrTooFewPartials) {
			t.Fatalf("%s partial alone: got %v, want ErrTooFewPartials", name, err)
		}
	}
}

// TestBlindVerifiableIsVOPRFMode: the threshold client's blinded elements
// are circl's VOPRF-mode ones for the same blinds, and differ from the
// POPRF mode's (the mode is in the hash-to-group domain).
func TestBlindVerifiableIsVOPRFMode(t *testing.T) {
	d := deal(t, seeded(t), 1, 1)
	blinds, blinded, err := token.BlindVerifiable(rand.Reader, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	pub := new(oprf.PublicKey)
	if err := pub.UnmarshalBinary(token.Suite, d.KeySet.GroupKey); err != nil {
		t.Fatal(err)
	}
	scalars := make([]oprf.Blind, len(blinds))
	for i, b := range blinds {
		scalars[i] = token.Suite.Group().NewScalar()
		if err := scalars[i].UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
	}
	_, req, err := oprf.NewVerifiableClient(token.Suite, pub).DeterministicBlind(testInputs, scalars)
	if err != nil {
		t.Fatal(err)
	}
	_, poprf, err := oprf.NewPartialObliviousClient(token.Suite, pub).DeterministicBlind(testInputs, scalars)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range req.Elements {
		want, _ := e.MarshalBinaryCompress()
		other, _ := poprf.Elements[i].MarshalBinaryCompress()
		if !bytes.Equal(blinded[i], want) {
			t.Errorf("input %d: blinded element is not circl's VOPRF-mode one", i)
		}
		if bytes.Equal(blinded[i], other) {
			t.Errorf("input %d: VOPRF and POPRF blinding agree", i)
		}
	}
}

// forgery is one way a partial can be wrong. It gets the genuine partial of
// the issuer, all genuine partials and the blinded elements.
type forgery struct {
	name  string
	forge func(p token.Partial, all []token.Partial) token.Partial
}

func flip(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }

var forgeries = []forgery{
	{"proof bit flipped", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Proof = flip(p.Proof, 7)
		return p
	}},
	{"proof second scalar flipped", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Proof = flip(p.Proof, 40)
		return p
	}},
	{"right proof, wrong element", func(p token.Partial, all []token.Partial) token.Partial {
		// A valid element from another issuer in place of one of this
		// issuer's: the proof is genuine, the element is not k_i·B.
		other := all[0]
		if other.Index == p.Index {
			other = all[1]
		}
		p.Evaluated = slices.Clone(p.Evaluated)
		p.Evaluated[1] = other.Evaluated[1]
		return p
	}},
	{"elements swapped", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Evaluated = slices.Clone(p.Evaluated)
		p.Evaluated[0], p.Evaluated[1] = p.Evaluated[1], p.Evaluated[0]
		return p
	}},
	{"swapped index", func(p token.Partial, all []token.Partial) token.Partial {
		// Another issuer's genuine partial, presented under this index.
		other := all[0]
		if other.Index == p.Index {
			other = all[1]
		}
		other.Index = p.Index
		return other
	}},
	{"unknown index", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Index = 99
		return p
	}},
	{"element not on the curve", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Evaluated = slices.Clone(p.Evaluated)
		p.Evaluated[0] = flip(p.Evaluated[0], 0)
		return p
	}},
	{"one element short", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Evaluated = p.Evaluated[:len(p.Evaluated)-1]
		return p
	}},
	{"short proof", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Proof = p.Proof[:token.ProofSize-1]
		return p
	}},
	{"identity element", func(p token.Partial, _ []token.Partial) token.Partial {
		p.Evaluated = slices.Clone(p.Evaluated)
		p.Evaluated[2] = make([]byte, token.ElementSize)
		return p
	}},
}

// TestEverySubsetAndForgery is the acceptance test over every subset for
// t=2,n=3 and t=3,n=5: every t-subset gives the same tokens; t−1 shares
// give ErrTooFewPartials; t partials with one forged (every forgery, every
// position) never give a token; t+1 partials with one forged give the
// genuine tokens, from the t valid ones.
func TestEverySubsetAndForgery(t *testing.T) {
	rnd := seeded(t)
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		t.Run(fmt.Sprintf("t=%d,n=%d", tc.t, tc.n), func(t *testing.T) {
			d := deal(t, rnd, tc.t, tc.n)
			blinds, blinded, err := token.BlindVerifiable(rnd, testInputs)
			if err != nil {
				t.Fatal(err)
			}
			want := circlVOPRF(t, d, testInputs, blinds)
			all := partials(t, d, blinded, func() []uint16 {
				x := make([]uint16, tc.n)
				for i := range x {
					x[i] = uint16(i + 1)
				}
				return x
			}()...)
			for _, c := range combiners {
				if !slices.Contains(checking, c.name) {
					continue
				}
				combine := func(ps []token.Partial) ([][]byte, error) {
					return c.combine(d.KeySet, testInputs, blinds, blinded, ps)
				}
				forgeAll(t, c.name, tc.t, tc.n, all, want, combine)
			}
		})
	}
}

// forgeAll is TestEverySubsetAndForgery for one combiner, named in its
// failures.
func forgeAll(t *testing.T, name string, threshold, n int, all []token.Partial, want [][]byte, combine func([]token.Partial) ([][]byte, error)) {
	t.Helper()
	pick := func(sub []uint16) []token.Partial {
		var out []token.Partial
		for _, x := range sub {
			out = append(out, all[x-1])
		}
		return out
	}
	for _, sub := range subsets(n, threshold) {
		got, err := combine(pick(sub))
		if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("%s, shares %v: tokens differ (%v)", name, sub, err)
		}
	}
	for _, sub := range subsets(n, threshold-1) {
		if _, err := combine(pick(sub)); !errors.Is(err, token.ErrTooFewPartials) {
			t.Fatalf("%s, %d shares %v: got %v, want ErrTooFewPartials", name, threshold-1, sub, err)
		}
	}
	// The same partial twice counts once.
	if sub := subsets(n, threshold-1); len(sub[0]) > 0 {
		given := append(pick(sub[0]), pick(sub[0])...)
		if _, err := combine(given); !errors.Is(err, token.ErrTooFewPartials) {
			t.Fatalf("%s, repeated partials: got %v, want ErrTooFewPartials", name, err)
		}
	}
	for _, f := range forgeries {
		for _, size := range []int{threshold, threshold + 1} {
			for _, sub := range subsets(n, size) {
				for pos := range sub {
					given := pick(sub)
					given[pos] = f.forge(given[pos], all)
					got, err := combine(given)
					if size == threshold {
						if err == nil || !errors.Is(err, token.ErrTooFewPartials) {
							t.Fatalf("%s: %s, shares %v, forged %d: got %v, want ErrTooFewPartials", name, f.name, sub, sub[pos], err)
						}
						continue
					}
					if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
						t.Fatalf("%s: %s, shares %v, forged %d of %d: the valid ones were not used (%v)", name, f.name, sub, sub[pos], size, err)
					}
				}
			}
		}
	}
}

// TestCombineBlindedChecksAgainstTheElementsGiven: CombineBlinded checks the
// proofs against the blinded elements it is given; partials made for other
// elements (another batch's) never verify.
func TestCombineBlindedChecksAgainstTheElementsGiven(t *testing.T) {
	rnd := seeded(t)
	d := deal(t, rnd, 2, 3)
	blinds, blinded, err := token.BlindVerifiable(rnd, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	_, otherBlinded, err := token.BlindVerifiable(rnd, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	ps := partials(t, d, otherBlinded, 1, 2)
	if _, err := token.CombineBlinded(d.KeySet, testInputs, blinds, blinded, ps); !errors.Is(err, token.ErrTooFewPartials) {
		t.Fatalf("partials for other elements: got %v, want ErrTooFewPartials", err)
	}
	if _, err := token.CombineBlinded(d.KeySet, testInputs, blinds, blinded[:1], partials(t, d, blinded, 1, 2)); !errors.Is(err, token.ErrMismatch) {
		t.Fatalf("one blinded element short: got %v, want ErrMismatch", err)
	}
}

func TestTooFewPartialsSaysHowMany(t *testing.T) {
	d := deal(t, seeded(t), 3, 5)
	blinds, blinded, err := token.BlindVerifiable(rand.Reader, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	ps := partials(t, d, blinded, 1, 4)
	ps = append(ps, forgeries[0].forge(partials(t, d, blinded, 5)[0], ps))
	_, err = token.Combine(d.KeySet, testInputs, blinds, ps)
	if !errors.Is(err, token.ErrTooFewPartials) || err.Error() != "token: too few valid partial evaluations: 2 valid of 3 needed (3 given, 1 rejected)" {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyPartial(t *testing.T) {
	d := deal(t, seeded(t), 2, 3)
	_, blinded, err := token.BlindVerifiable(rand.Reader, testInputs)
	if err != nil {
		t.Fatal(err)
	}
	all := partials(t, d, blinded, 1, 2, 3)
	key := func(x uint16) []byte { return d.KeySet.Shares[x-1].Key }
	for _, p := range all {
		if err := token.VerifyPartial(key(p.Index), blinded, p.Evaluated, p.Proof); err != nil {
			t.Errorf("genuine partial %d: %v", p.Index, err)
		}
	}
	want := map[string]error{
		"proof bit flipped":           token.ErrProofInvalid,
		"proof second scalar flipped": token.ErrProofInvalid,
		"right proof, wrong element":  token.ErrProofInvalid,
		"elements swapped":            token.ErrProofInvalid,
		"swapped index":               token.ErrProofInvalid,
		"element not on the curve":    token.ErrEncoding,
		"one element short":           token.ErrMismatch,
		"short proof":                 token.ErrEncoding,
		"identity element":            token.ErrEncoding,
	}
	for _, f := range forgeries {
		w, ok := want[f.name]
		if !ok {
			continue // the index is the caller's to look up
		}
		p := f.forge(all[1], all)
		if err := token.VerifyPartial(key(2), blinded, p.Evaluated, p.Proof); !errors.Is(err, w) {
			t.Errorf("%s: got %v, want %v", f.name, err, w)
		}
	}
	// A proof made by circl's own VerifiableServer for another blinded
	// batch does not verify for this one.
	_, other, _ := token.BlindVerifiable(rand.Reader, testInputs)
	if err := token.VerifyPartial(key(1), other, all[0].Evaluated, all[0].Proof); !errors.Is(err, token.ErrProofInvalid) {
		t.Errorf("other batch: got %v", err)
	}
	if err := token.VerifyPartial(make([]byte, 32), blinded, all[0].Evaluated, all[0].Proof); !errors.Is(err, token.ErrEncoding) {
		t.Errorf("identity key: got %v", err)
	}
	if err := token.VerifyPartial(key(1), nil, nil, all[0].Proof); !errors.Is(err, token.ErrBatchSize) {
		t.Errorf("empty batch: got %v", err)
	}
}

func TestCheckKeySetRejects(t *testing.T) {
	rnd := seeded(t)
	d := deal(t, rnd, 2, 3)
	other := deal(t, rnd, 2, 3)
	tests := []struct {
		name   string
		modify func(ks *token.KeySet)
	}{
		{"t zero", func(ks *token.KeySet) { ks.T = 0 }},
		{"t above n", func(ks *token.KeySet) { ks.T = 4 }},
		{"no shares", func(ks *token.KeySet) { ks.Shares = nil; ks.T = 1 }},
		{"index zero", func(ks *token.KeySet) { ks.Shares[0].Index = 0 }},
		{"index repeated", func(ks *token.KeySet) { ks.Shares[1].Index = 1 }},
		{"share not an element", func(ks *token.KeySet) { ks.Shares[2].Key = flip(ks.Shares[2].Key, 0) }},
		{"share identity", func(ks *token.KeySet) { ks.Shares[2].Key = make([]byte, 32) }},
		{"share short", func(ks *token.KeySet) { ks.Shares[0].Key = ks.Shares[0].Key[:31] }},
		{"group key identity", func(ks *token.KeySet) { ks.GroupKey = make([]byte, 32) }},
		{"group key of another deal", func(ks *token.KeySet) { ks.GroupKey = other.KeySet.GroupKey }},
		{"one share of another deal", func(ks *token.KeySet) { ks.Shares[2].Key = other.KeySet.Shares[2].Key }},
		{"shares swapped", func(ks *token.KeySet) { ks.Shares[0].Key, ks.Shares[2].Key = ks.Shares[2].Key, ks.Shares[0].Key }},
		{"too many issuers", func(ks *token.KeySet) {
			for i := 4; i <= token.MaxIssuers+1; i++ {
				ks.Shares = append(ks.Shares, token.PublicShare{Index: uint16(i), Key: ks.GroupKey})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := d.KeySet
			ks.Shares = slices.Clone(ks.Shares)
			tt.modify(&ks)
			if err := token.CheckKeySet(ks); !errors.Is(err, token.ErrKeySet) {
				t.Fatalf("got %v, want ErrKeySet", err)
			}
			if _, err := token.Combine(ks, testInputs[:1], [][]byte{make([]byte, 32)}, nil); !errors.Is(err, token.ErrKeySet) {
				t.Fatalf("combine: got %v, want ErrKeySet", err)
			}
		})
	}
	// Order of the shares does not matter.
	ks := d.KeySet
	ks.Shares = []token.PublicShare{ks.Shares[2], ks.Shares[0], ks.Shares[1]}
	if err := token.CheckKeySet(ks); err != nil {
		t.Fatalf("reordered shares refused: %v", err)
	}
}

// TestRecoverFromShares checks the test dealer against circl's
// secretsharing: any t shares recover k.
func TestRecoverFromShares(t *testing.T) {
	d := deal(t, seeded(t), 3, 5)
	for _, sub := range subsets(5, 3) {
		var shares [][]byte
		for _, x := range sub {
			shares = append(shares, d.Shares[x-1])
		}
		k, err := tokentest.Recover(3, sub, shares)
		if err != nil || !bytes.Equal(k, d.Key) {
			t.Fatalf("shares %v: recovered %v", sub, err)
		}
	}
}

func TestCombineRequestErrors(t *testing.T) {
	d := deal(t, seeded(t), 1, 1)
	blinds, blinded, _ := token.BlindVerifiable(rand.Reader, testInputs)
	ps := partials(t, d, blinded, 1)
	tests := []struct {
		name    string
		inputs  [][]byte
		blinds  [][]byte
		parts   []token.Partial
		wantErr error
	}{
		{"no inputs", nil, nil, ps, token.ErrBatchSize},
		{"blinds short", testInputs, blinds[:2], ps, token.ErrMismatch},
		{"zero blind", testInputs, [][]byte{blinds[0], make([]byte, 32), blinds[2]}, ps, token.ErrEncoding},
		{"short blind", testInputs, [][]byte{blinds[0], blinds[1][:31], blinds[2]}, ps, token.ErrEncoding},
		{"too many partials", testInputs, blinds, slices.Repeat(ps, token.MaxIssuers+1), token.ErrBatchSize},
		{"wrong blinds", testInputs, [][]byte{blinds[1], blinds[0], blinds[2]}, ps, token.ErrTooFewPartials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := token.Combine(d.KeySet, tt.inputs, tt.blinds, tt.parts); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// FuzzCombine feeds arbitrary key set and partial bytes to CheckKeySet,
// VerifyPartial and Combine: they must refuse them with an error, never
// panic, and Combine must never return tokens for a forged partial.
func FuzzCombine(f *testing.F) {
	d, err := tokentest.Deal(bytes.NewReader(bytes.Repeat([]byte{3}, 1024)), 2, 3)
	if err != nil {
		f.Fatal(err)
	}
	blinds, blinded, err := token.BlindVerifiable(bytes.NewReader(bytes.Repeat([]byte{5}, 1024)), testInputs[:1])
	if err != nil {
		f.Fatal(err)
	}
	p, err := d.Partial(1, blinded)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(2), uint16(1), d.KeySet.GroupKey, d.KeySet.Shares[0].Key, p.Evaluated[0], p.Proof)
	f.Add(uint8(1), uint16(0), []byte{}, []byte{1}, []byte{2}, []byte{3})
	f.Fuzz(func(t *testing.T, th uint8, index uint16, groupKey, shareKey, evaluated, proof []byte) {
		ks := token.KeySet{T: int(th), GroupKey: groupKey, Shares: []token.PublicShare{{Index: index, Key: shareKey}}}
		_ = token.CheckKeySet(ks)
		_ = token.VerifyPartial(shareKey, blinded, [][]byte{evaluated}, proof)
		// Against the genuine key set, a partial of issuer 1 and the
		// fuzzed one: tokens only if the fuzzed partial is genuine too.
		fuzzed := token.Partial{Index: index, Evaluated: [][]byte{evaluated}, Proof: proof}
		toks, err := token.Combine(d.KeySet, testInputs[:1], blinds, []token.Partial{p, fuzzed})
		if err == nil {
			if index < 2 || index > 3 || token.VerifyPartial(d.KeySet.Shares[index-1].Key, blinded, fuzzed.Evaluated, proof) != nil {
				t.Fatalf("combined with a forged partial: %d tokens", len(toks))
			}
		} else if !errors.Is(err, token.ErrTooFewPartials) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

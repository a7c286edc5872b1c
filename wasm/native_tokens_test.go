package wasm_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// subsetEvaluator answers with the partials of the chosen issuers of a
// dealt key, evaluated natively by their ShareIssuers.
type subsetEvaluator struct {
	d   wasmtest.Dealt
	use []int
}

func (e subsetEvaluator) KeySet(context.Context, string, uint32) (wasm.KeySet, error) {
	return e.d.KeySet, nil
}

// verifiedSubset is subsetEvaluator claiming its (genuine) partials
// verified, as the node's evaluator does: the client combines them with
// OpCombineVerified.
type verifiedSubset struct{ subsetEvaluator }

func (verifiedSubset) PartialsVerified() bool { return true }

func (e subsetEvaluator) EvaluatePartials(_ context.Context, _ string, _ uint32, blinded [][]byte) ([]wasm.Partial, error) {
	var out []wasm.Partial
	for _, i := range e.use {
		p, err := e.d.Issuers[i].Partial(blinded)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// random999 returns n distinct-enough valid NHS numbers of the 999 test
// range, some formatted with spaces.
func random999(rng *rand.Rand, n int) []string {
	out := make([]string, 0, n)
	for len(out) < n {
		s := "999" + fmt.Sprintf("%06d", rng.IntN(1_000_000))
		total := 0
		for i := range 9 {
			total += int(s[i]-'0') * (10 - i)
		}
		check := (11 - total%11) % 11
		if check == 10 {
			continue
		}
		s += strconv.Itoa(check)
		if rng.IntN(4) == 0 {
			s = s[:3] + " " + s[3:6] + " " + s[6:]
		}
		out = append(out, s)
	}
	return out
}

// TestNativeTokensAreTheModules holds the node's native token client to
// the module on every run: 10^4 random numbers under a dealt 2-of-3 key
// give the same tokens and keys natively (issuers 2 and 3, combined as the
// node does, with partials it verified: OpCombineVerified) and in the
// module under wazero (issuers 1 and 2, every proof checked, as a browser
// does), in batches over the cores.
func TestNativeTokensAreTheModules(t *testing.T) {
	n := 10_000
	if testing.Short() || testutil.RaceEnabled {
		n = 1_000
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	var key [32]byte
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	d, err := wasmtest.Deal(rand.NewChaCha8(key), "safeguarding", 3, 2, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	numbers := random999(rng, n)
	workers := runtime.GOMAXPROCS(0)
	r, err := wasm.New(context.Background(), wasm.Config{Instances: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	native := wasm.NewNativeClient(nil)
	const batch = 500
	var wg sync.WaitGroup
	errs := make([]error, (n+batch-1)/batch)
	sem := make(chan struct{}, workers)
	for b := range errs {
		wg.Add(1)
		sem <- struct{}{}
		go func(b int) {
			defer func() { <-sem; wg.Done() }()
			nums := numbers[b*batch : min((b+1)*batch, n)]
			ctx := context.Background()
			mod, err := r.ThresholdTokens(ctx, subsetEvaluator{d, []int{0, 1}}, "nhs", nums, "safeguarding", 3)
			if err != nil {
				errs[b] = fmt.Errorf("module: %w", err)
				return
			}
			nat, err := native.ThresholdTokens(ctx, verifiedSubset{subsetEvaluator{d, []int{1, 2}}}, "nhs", nums, "safeguarding", 3)
			if err != nil {
				errs[b] = fmt.Errorf("native: %w", err)
				return
			}
			for i := range mod {
				if !bytes.Equal(mod[i].Token, nat[i].Token) || mod[i].LookupKey != nat[i].LookupKey || mod[i].SealKey != nat[i].SealKey {
					errs[b] = fmt.Errorf("number %d of batch %d: module and native tokens differ", i, b)
					return
				}
			}
		}(b)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

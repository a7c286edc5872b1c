package adapter

import (
	"context"
	"runtime"
	"sync"

	"github.com/signpost-federation/signpost/node/internal/secrethook"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm"
)

// WasmTokenizer is a Tokenizer that runs in the one wasm module, under
// wazero: the module validates numbers and blinds them; the Evaluator (the
// node's own, which enforces its purposes and asks the token issuers)
// returns t partial evaluations; the module verifies every partial's proof,
// combines them, unblinds and derives the keys. The node uses
// [NativeTokenizer], the same source compiled natively; the module is what
// browsers and edge clients run, and tests hold the two to the same
// results.
type WasmTokenizer struct {
	R *wasm.Runtime
}

// NativeTokenizer is the node's Tokenizer: the same Go source the wasm
// module is built from (package wasm's handler, identifier validation and
// threshold client), compiled natively through [wasm.NativeClient]. It
// gives exactly the module's validation results, reasons and tokens (tests
// in package wasm and here compare them on random inputs on every run) at
// native speed, for the node's own server-side work: API locate, import,
// republishing and contact requests. See docs/RATIONALE.md.
type NativeTokenizer struct {
	C *wasm.NativeClient
}

// CombinesVerified implements port.VerifiedCombiner: the native tokenizer
// takes the node's partials as verified (see verifiedEvaluator).
func (t *NativeTokenizer) CombinesVerified() bool { return true }

// NewNativeTokenizer returns the node's native tokenizer, with blinds from
// crypto/rand.
func NewNativeTokenizer() *NativeTokenizer {
	return &NativeTokenizer{C: wasm.NewNativeClient(nil)}
}

// tokenClient is what a tokenizer needs of the module or its native twin.
type tokenClient interface {
	ValidateBatch(ctx context.Context, scheme string, inputs []string) ([]wasm.Result, error)
	ThresholdTokens(ctx context.Context, ev wasm.ThresholdEvaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]wasm.Token, error)
}

var (
	_ tokenClient = (*wasm.Runtime)(nil)
	_ tokenClient = (*wasm.NativeClient)(nil)
)

// errInvalidNumber carries a validation reason that is safe to show.
type errInvalidNumber struct{ reason string }

func (e errInvalidNumber) Error() string { return e.reason }

// Normalize implements Tokenizer. The module's Result echoes the input;
// only the reason and the canonical digits are used.
func (t *WasmTokenizer) Normalize(ctx context.Context, input string) (string, error) {
	return normalize(ctx, t.R, input)
}

// Keys implements port.Tokenizer, under the purpose's current key.
func (t *WasmTokenizer) Keys(ctx context.Context, pev port.Evaluator, purpose string, numbers []string) ([]port.Keys, error) {
	return keys(ctx, t.R, pev, purpose, numbers, false)
}

// Normalize implements Tokenizer, with the module's validation compiled
// natively: the same reasons as [WasmTokenizer.Normalize].
func (t *NativeTokenizer) Normalize(ctx context.Context, input string) (string, error) {
	return normalize(ctx, t.C, input)
}

// Keys implements port.Tokenizer natively, under the purpose's current
// key: the same tokens as [WasmTokenizer.Keys].
func (t *NativeTokenizer) Keys(ctx context.Context, pev port.Evaluator, purpose string, numbers []string) ([]port.Keys, error) {
	return keys(ctx, t.C, pev, purpose, numbers, true)
}

func normalize(ctx context.Context, c tokenClient, input string) (string, error) {
	if len(input) > 64 {
		return "", errInvalidNumber{"the NHS number is too long"}
	}
	res, err := c.ValidateBatch(ctx, "nhs", []string{input})
	if err != nil {
		return "", err
	}
	if !res[0].Valid {
		reason := res[0].Reason
		if reason == "" {
			reason = "not a valid NHS number (" + res[0].Code + ")"
		}
		return "", errInvalidNumber{reason}
	}
	return res[0].Normalized, nil
}

// keys tokenises numbers under purpose's current key. verified says the
// client may take pev's partials as verified (see verifiedEvaluator).
func keys(ctx context.Context, c tokenClient, pev port.Evaluator, purpose string, numbers []string, verified bool) ([]port.Keys, error) {
	if pev == nil {
		return nil, port.ErrIssuerUnavailable
	}
	// One key for the whole batch, even if a newer one is adopted meanwhile.
	ks, err := pev.KeySet(ctx, purpose, 0)
	if err != nil {
		return nil, err
	}
	var ev wasm.ThresholdEvaluator = ThresholdEvaluator{E: pev}
	if verified {
		ev = verifiedEvaluator{ThresholdEvaluator{E: pev}}
	}
	// Split the batch over the cores (the module's instances, one per core
	// by default): blinding and proof verification are CPU-bound.
	parts := min(runtime.GOMAXPROCS(0), (len(numbers)+63)/64)
	parts = max(parts, 1)
	size := (len(numbers) + parts - 1) / parts
	out := make([]port.Keys, len(numbers))
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*size, min((p+1)*size, len(numbers))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func(p, lo, hi int) {
			defer wg.Done()
			toks, err := c.ThresholdTokens(ctx, ev, "nhs", numbers[lo:hi], purpose, ks.Epoch)
			if err != nil {
				errs[p] = err
				return
			}
			if note := secrethook.Tokens; note != nil {
				note(numbers[lo:hi], toks)
			}
			for i, tk := range toks {
				out[lo+i] = port.Keys{Lookup: tk.LookupKey, Seal: tk.SealKey}
			}
		}(p, lo, hi)
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		// The evaluator's own errors (the node's API errors, ErrPurpose,
		// *IssuersError, ErrIssuerUnavailable) stay in the chain for the
		// caller's errors.As and errors.Is.
		return nil, err
	}
	return out, nil
}

// ThresholdEvaluator adapts the node's port.Evaluator to the wasm package's
// ThresholdEvaluator (the same values in the wasm package's types).
type ThresholdEvaluator struct{ E port.Evaluator }

// verifiedEvaluator is the node's evaluator as the native tokenizer sees it:
// a port.Evaluator returns only partials whose proofs it verified, so the
// native combine does not check them again (wasm.VerifyingEvaluator). The
// module's tokenizer checks them again, as a browser does.
type verifiedEvaluator struct{ ThresholdEvaluator }

// PartialsVerified implements wasm.VerifyingEvaluator.
func (verifiedEvaluator) PartialsVerified() bool { return true }

// KeySet implements wasm.ThresholdEvaluator.
func (e ThresholdEvaluator) KeySet(ctx context.Context, purpose string, epoch uint32) (wasm.KeySet, error) {
	ks, err := e.E.KeySet(ctx, purpose, epoch)
	if err != nil {
		return wasm.KeySet{}, err
	}
	return WasmKeySet(ks), nil
}

// EvaluatePartials implements wasm.ThresholdEvaluator.
func (e ThresholdEvaluator) EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]wasm.Partial, error) {
	ps, err := e.E.EvaluatePartials(ctx, purpose, epoch, blinded)
	if err != nil {
		return nil, err
	}
	out := make([]wasm.Partial, len(ps))
	for i, p := range ps {
		out[i] = wasm.Partial{Index: p.Index, Evaluated: p.Evaluated, Proof: p.Proof}
	}
	return out, nil
}

// WasmKeySet converts a port.KeySet to the wasm package's.
func WasmKeySet(ks port.KeySet) wasm.KeySet {
	w := wasm.KeySet{Purpose: ks.Purpose, Epoch: ks.Epoch, T: ks.T, GroupKey: ks.GroupKey, Shares: make([]wasm.PublicShare, len(ks.Issuers))}
	for i, ik := range ks.Issuers {
		w.Shares[i] = wasm.PublicShare{Index: ik.Index, NodeID: ik.NodeID, Key: ik.PublicShare}
	}
	return w
}

var _ wasm.ThresholdEvaluator = ThresholdEvaluator{}

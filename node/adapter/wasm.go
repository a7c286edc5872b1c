package adapter

import (
	"context"
	"runtime"
	"sync"

	"github.com/signpost-federation/signpost/node/internal/secrethook"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm"
)

// WasmTokenizer is the production Tokenizer: the one wasm module, under
// wazero, validates numbers and blinds them; the Evaluator (the node's own,
// which enforces its purposes and asks the token issuers) returns t partial
// evaluations; the module verifies every partial's proof, combines them,
// unblinds and derives the keys.
type WasmTokenizer struct {
	R *wasm.Runtime
}

// errInvalidNumber carries a validation reason that is safe to show.
type errInvalidNumber struct{ reason string }

func (e errInvalidNumber) Error() string { return e.reason }

// Normalize implements Tokenizer. The module's Result echoes the input;
// only the reason and the canonical digits are used.
func (t *WasmTokenizer) Normalize(ctx context.Context, input string) (string, error) {
	if len(input) > 64 {
		return "", errInvalidNumber{"the NHS number is too long"}
	}
	res, err := t.R.Validate(ctx, "nhs", input)
	if err != nil {
		return "", err
	}
	if !res.Valid {
		reason := res.Reason
		if reason == "" {
			reason = "not a valid NHS number (" + res.Code + ")"
		}
		return "", errInvalidNumber{reason}
	}
	return res.Normalized, nil
}

// Keys implements port.Tokenizer, under the purpose's current key.
func (t *WasmTokenizer) Keys(ctx context.Context, pev port.Evaluator, purpose string, numbers []string) ([]port.Keys, error) {
	if pev == nil {
		return nil, port.ErrIssuerUnavailable
	}
	// One key for the whole batch, even if a newer one is adopted meanwhile.
	ks, err := pev.KeySet(ctx, purpose, 0)
	if err != nil {
		return nil, err
	}
	ev := ThresholdEvaluator{E: pev}
	// Split the batch over the module's instances (one per core by
	// default): blinding and proof verification are CPU-bound in the module.
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
			toks, err := t.R.ThresholdTokens(ctx, ev, "nhs", numbers[lo:hi], purpose, ks.Epoch)
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

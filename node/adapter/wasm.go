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
// which enforces its purposes and forwards to the issuer) evaluates; the
// module verifies the proof, unblinds and derives the keys.
type WasmTokenizer struct {
	R     *wasm.Runtime
	Epoch uint32
	// IssuerPublicKey verifies the issuer's proofs.
	IssuerPublicKey []byte
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

// Keys implements port.Tokenizer.
func (t *WasmTokenizer) Keys(ctx context.Context, pev port.Evaluator, purpose string, numbers []string) ([]port.Keys, error) {
	if pev == nil {
		return nil, port.ErrIssuerUnavailable
	}
	ev := keyedEvaluator{pev, t.IssuerPublicKey}
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
			toks, err := t.R.Tokens(ctx, ev, "nhs", numbers[lo:hi], purpose, t.Epoch)
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
		// ErrIssuerUnavailable) stay in the chain for the caller's
		// errors.As and errors.Is.
		return nil, err
	}
	return out, nil
}

// IssuerEvaluator adapts the wasm package's native issuer to port.Evaluator.
type IssuerEvaluator struct{ I *wasm.Issuer }

// Evaluate implements port.Evaluator.
func (e IssuerEvaluator) Evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return e.I.Evaluate(purpose, epoch, blinded)
}

// keyedEvaluator gives the wasm runtime the issuer public key with the
// node's evaluator.
type keyedEvaluator struct {
	port.Evaluator
	pub []byte
}

func (k keyedEvaluator) IssuerPublicKey(context.Context, uint32) ([]byte, error) { return k.pub, nil }

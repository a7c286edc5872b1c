package node

import (
	"context"
	"errors"
	"sync"

	"github.com/signpost-federation/signpost/wasm"
)

// WasmTokenizer is the production Tokenizer: the one wasm module, under
// wazero, validates numbers and blinds them; the Evaluator (the node's own,
// which enforces its purposes and forwards to the issuer) evaluates; the
// module verifies the proof, unblinds and derives the keys.
type WasmTokenizer struct {
	R     *wasm.Runtime
	Epoch uint32

	mu sync.RWMutex
	ev wasm.Evaluator
}

// SetEvaluator sets the evaluator (the node's, once the node exists).
func (t *WasmTokenizer) SetEvaluator(ev Evaluator) {
	t.mu.Lock()
	t.ev = ev
	t.mu.Unlock()
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

// Keys implements Tokenizer.
func (t *WasmTokenizer) Keys(ctx context.Context, purpose string, numbers []string) ([]Keys, error) {
	t.mu.RLock()
	ev := t.ev
	t.mu.RUnlock()
	if ev == nil {
		return nil, ErrIssuerUnavailable
	}
	out := make([]Keys, 0, len(numbers))
	const chunk = 256
	for i := 0; i < len(numbers); i += chunk {
		j := min(i+chunk, len(numbers))
		toks, err := t.R.Tokens(ctx, ev, "nhs", numbers[i:j], purpose, t.Epoch)
		if err != nil {
			if errors.Is(err, ErrPurpose) {
				return nil, err
			}
			var ae *apiError
			if errors.As(err, &ae) {
				return nil, ae
			}
			return nil, err
		}
		for _, tk := range toks {
			out = append(out, Keys{Lookup: tk.LookupKey, Seal: tk.SealKey})
		}
	}
	return out, nil
}

// IssuerEvaluator adapts the wasm package's native issuer to Evaluator.
type IssuerEvaluator struct{ I *wasm.Issuer }

// Evaluate implements Evaluator.
func (e IssuerEvaluator) Evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return e.I.Evaluate(purpose, epoch, blinded)
}

// keyedEvaluator gives the wasm runtime the issuer public key with the
// node's evaluator.
type keyedEvaluator struct {
	Evaluator
	pub []byte
}

func (k keyedEvaluator) IssuerPublicKey(context.Context, uint32) ([]byte, error) { return k.pub, nil }

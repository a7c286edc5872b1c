package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// validateChunk bounds the inputs per module call of ValidateBatch.
const validateChunk = 4096

// Validate validates one identifier under a scheme ("nhs", "chi", "hc",
// "upn", "uln"). An invalid identifier is a Result with Valid false, not an
// error; errors are for unknown schemes, closed runtimes and cancellation.
func (r *Runtime) Validate(ctx context.Context, scheme, input string) (Result, error) {
	res, err := r.ValidateBatch(ctx, scheme, []string{input})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// ValidateBatch validates many identifiers with few module calls (one per
// 4096 inputs). Results are in input order.
func (r *Runtime) ValidateBatch(ctx context.Context, scheme string, inputs []string) ([]Result, error) {
	return validateBatch(scheme, inputs, func(inputs []string, out []Result) error {
		return r.validateChunk(ctx, scheme, inputs, out)
	})
}

// validateBatch splits inputs into chunks of validateChunk for chunk, which
// validates one into out (the module's and the native client's).
func validateBatch(scheme string, inputs []string, chunk func(inputs []string, out []Result) error) ([]Result, error) {
	out := make([]Result, len(inputs))
	for start := 0; start < len(inputs); start += validateChunk {
		end := min(start+validateChunk, len(inputs))
		if err := chunk(inputs[start:end], out[start:end]); err != nil {
			return nil, err
		}
	}
	if len(inputs) == 0 { // still report an unknown scheme
		if err := chunk(nil, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkChunkSize bounds one validation call's input bytes.
func checkChunkSize(inputs []string) error {
	size := 0
	for _, in := range inputs {
		size += len(in)
	}
	if size > abi.MaxMessage/2 {
		return ErrInputTooLarge
	}
	return nil
}

func (r *Runtime) validateChunk(ctx context.Context, scheme string, inputs []string, out []Result) error {
	if err := checkChunkSize(inputs); err != nil {
		return err
	}
	return r.do(ctx, abi.OpValidateCompact, encodeSchemeInputs(scheme, inputs), func(in *instance, view []byte) error {
		return decodeValidateCompact(in.str, view, scheme, inputs, out)
	})
}

// encodeSchemeInputs returns the encoder of a request that is a scheme and
// its inputs: OpValidate, OpValidateCompact and OpBlind take the same list.
func encodeSchemeInputs(scheme string, inputs []string) func(dst []byte) []byte {
	return func(dst []byte) []byte {
		e := abi.Encoder{Buf: dst}
		e.Begin(1 + len(inputs))
		e.String(scheme)
		for _, in := range inputs {
			e.String(in)
		}
		return e.Buf
	}
}

// codeNames are the reason codes by OpValidateCompact's index (1-based).
var codeNames = Codes()

// decodeValidateCompact decodes an OpValidateCompact response into out
// (len(inputs)). str converts bytes to strings (interning frequent ones).
func decodeValidateCompact(str func([]byte) string, view []byte, scheme string, inputs []string, out []Result) error {
	it := abi.NewIter(view)
	if it.Len() != 2 {
		return fmt.Errorf("%w: validate returned %d items", ErrABI, it.Len())
	}
	system, p := str(it.Next()), it.Next()
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: validate response: %w", ErrABI, err)
	}
	short := fmt.Errorf("%w: validate response truncated", ErrABI)
	field := func() ([]byte, bool) {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return nil, false
		}
		f := p[1 : 1+int(p[0])]
		p = p[1+int(p[0]):]
		return f, true
	}
	for i := range inputs {
		if len(p) < 2 {
			return short
		}
		flags, code := p[0], int(p[1])
		p = p[2:]
		norm, ok1 := field()
		formatted, ok2 := field()
		rng, ok3 := field()
		if !ok1 || !ok2 || !ok3 || code > len(codeNames) {
			return short
		}
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return short
		}
		reason := p[n : n+int(l)]
		p = p[n+int(l):]
		res := Result{Input: inputs[i], Valid: flags&1 == 1, Scheme: scheme, System: system}
		if len(norm) > 0 {
			both := string(norm) + string(formatted)
			res.Normalized, res.Formatted = both[:len(norm)], both[len(norm):]
		}
		if code > 0 {
			res.Code = codeNames[code-1]
		}
		res.Reason, res.Range = str(reason), str(rng)
		out[i] = res
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: validate response has trailing bytes", ErrABI)
	}
	return nil
}

// decodeValidate decodes an OpValidate response into out (len(inputs)).
// str converts bytes to strings (interning frequent ones).
func decodeValidate(str func([]byte) string, view []byte, scheme string, inputs []string, out []Result) error {
	it := abi.NewIter(view)
	if it.Len() != 1+6*len(inputs) {
		return fmt.Errorf("%w: validate returned %d items for %d inputs", ErrABI, it.Len(), len(inputs))
	}
	system := str(it.Next())
	for i := range inputs {
		flags, norm, formatted := it.Next(), it.Next(), it.Next()
		code, reason, rng := it.Next(), it.Next(), it.Next()
		res := Result{Input: inputs[i], Valid: len(flags) == 1 && flags[0] == '1', Scheme: scheme, System: system}
		if len(norm) > 0 {
			// One allocation for both forms.
			both := string(norm) + string(formatted)
			res.Normalized, res.Formatted = both[:len(norm)], both[len(norm):]
		}
		res.Code, res.Reason, res.Range = str(code), str(reason), str(rng)
		out[i] = res
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: validate response: %w", ErrABI, err)
	}
	return nil
}

// Blind validates and blinds numbers of one scheme inside the module, with
// blinds drawn from crypto/rand. Every number must be valid; otherwise the
// error wraps [ErrInvalidNumber] and names the item's index and reason code
// (never the number). At most 4096 numbers.
func (r *Runtime) Blind(ctx context.Context, scheme string, numbers []string) (*Blinding, error) {
	if len(numbers) == 0 || len(numbers) > token.MaxBatch {
		return nil, ErrBatchSize
	}
	b := &Blinding{Scheme: scheme, Numbers: append([]string(nil), numbers...)}
	decode := func(view []byte) error { return decodeBlind(view, len(numbers), b) }
	if err := r.call(ctx, abi.OpBlind, "blind", encodeSchemeInputs(scheme, numbers), decode); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeBlind decodes an OpBlind response for n numbers into b.
func decodeBlind(view []byte, n int, b *Blinding) error {
	items, err := abi.DecodeList(view)
	if err != nil || len(items) != 2*n {
		return fmt.Errorf("%w: blind response malformed", ErrABI)
	}
	b.Blinds = make([][]byte, n)
	b.Blinded = make([][]byte, n)
	for i := range n {
		b.Blinds[i] = append([]byte(nil), items[2*i]...)
		b.Blinded[i] = append([]byte(nil), items[2*i+1]...)
	}
	return nil
}

// Finalize verifies the issuer's evaluation of a Blinding against the
// issuer's public key and returns the tokens with their derived keys, in the
// order of b.Numbers. A proof that does not verify gives [ErrProofInvalid].
func (r *Runtime) Finalize(ctx context.Context, b *Blinding, publicKey []byte, purpose string, epoch uint32, evaluated [][]byte, proof []byte) ([]Token, error) {
	n := len(b.Numbers)
	if n == 0 || n > token.MaxBatch {
		return nil, ErrBatchSize
	}
	if len(b.Blinds) != n || len(evaluated) != n {
		return nil, ErrMismatch
	}
	// The purpose is checked by the module (an invalid one gives
	// [ErrInvalidPurpose]), as in a browser: one rule, one place that
	// applies it to tokens.
	encode := func(dst []byte) []byte {
		e := abi.Encoder{Buf: dst}
		e.Begin(5 + 3*n)
		e.String(b.Scheme)
		e.String(purpose)
		e.String(strconv.FormatUint(uint64(epoch), 10))
		e.Bytes(publicKey)
		e.Bytes(proof)
		for i := range n {
			e.String(b.Numbers[i])
			e.Bytes(b.Blinds[i])
			e.Bytes(evaluated[i])
		}
		return e.Buf
	}
	toks := make([]Token, n)
	decode := func(view []byte) error { return decodeFinalize(view, toks) }
	if err := r.call(ctx, abi.OpFinalize, "finalize", encode, decode); err != nil {
		return nil, err
	}
	return toks, nil
}

// decodeFinalize decodes an OpFinalize response into toks.
func decodeFinalize(view []byte, toks []Token) error {
	items, err := abi.DecodeList(view)
	if err != nil || len(items) != 3*len(toks) {
		return fmt.Errorf("%w: finalize response malformed", ErrABI)
	}
	for i := range toks {
		t, l, s := items[3*i], items[3*i+1], items[3*i+2]
		if len(t) != token.TokenSize || len(l) != 16 || len(s) != 32 {
			return fmt.Errorf("%w: finalize response malformed", ErrABI)
		}
		toks[i].Token = append([]byte(nil), t...)
		copy(toks[i].LookupKey[:], l)
		copy(toks[i].SealKey[:], s)
	}
	return nil
}

// Tokens runs the whole client flow for numbers of one scheme: validate and
// blind in the module, evaluate through ev, verify and finalize in the
// module. The issuer public key comes from ev if it implements
// [IssuerKeyer], else from Config.IssuerPublicKey. Batches above 4096 are
// split. Tokens are in the order of numbers.
func (r *Runtime) Tokens(ctx context.Context, ev Evaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]Token, error) {
	if err := token.ValidatePurpose(purpose); err != nil {
		return nil, ErrInvalidPurpose
	}
	if len(numbers) == 0 {
		return nil, ErrBatchSize
	}
	pub := r.cfg.IssuerPublicKey
	if k, ok := ev.(IssuerKeyer); ok {
		p, err := k.IssuerPublicKey(ctx, epoch)
		if err != nil {
			return nil, fmt.Errorf("wasm: issuer public key: %w", err)
		}
		pub = p
	}
	if len(pub) == 0 {
		return nil, fmt.Errorf("%w: none configured (Config.IssuerPublicKey or IssuerKeyer)", ErrPublicKey)
	}
	out := make([]Token, 0, len(numbers))
	for start := 0; start < len(numbers); start += token.MaxBatch {
		chunk := numbers[start:min(start+token.MaxBatch, len(numbers))]
		b, err := r.Blind(ctx, scheme, chunk)
		if err != nil {
			return nil, err
		}
		evaluated, proof, err := ev.Evaluate(ctx, purpose, epoch, b.Blinded)
		if err != nil {
			return nil, fmt.Errorf("wasm: evaluate: %w", err)
		}
		if len(evaluated) != len(chunk) {
			return nil, ErrMismatch
		}
		toks, err := r.Finalize(ctx, b, pub, purpose, epoch, evaluated, proof)
		if err != nil {
			return nil, err
		}
		out = append(out, toks...)
	}
	return out, nil
}

// DeriveKeys derives lookup and seal keys inside the module (the guest's
// counterpart of the package-level [DeriveKeys]).
func (r *Runtime) DeriveKeys(ctx context.Context, tokens [][]byte) (lookup [][16]byte, seal [][32]byte, err error) {
	if len(tokens) > token.MaxBatch {
		return nil, nil, ErrBatchSize
	}
	encode := func(dst []byte) []byte { return abi.AppendList(dst, tokens...) }
	err = r.call(ctx, abi.OpDeriveKeys, "derive keys", encode, func(view []byte) error {
		lookup, seal, err = decodeDeriveKeys(view, len(tokens))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return lookup, seal, nil
}

// decodeDeriveKeys decodes an OpDeriveKeys response for n tokens.
func decodeDeriveKeys(view []byte, n int) (lookup [][16]byte, seal [][32]byte, err error) {
	items, err := abi.DecodeList(view)
	if err != nil || len(items) != 2*n {
		return nil, nil, fmt.Errorf("%w: derive response malformed", ErrABI)
	}
	lookup = make([][16]byte, n)
	seal = make([][32]byte, n)
	for i := range n {
		if len(items[2*i]) != 16 || len(items[2*i+1]) != 32 {
			return nil, nil, fmt.Errorf("%w: derive response malformed", ErrABI)
		}
		copy(lookup[i][:], items[2*i])
		copy(seal[i][:], items[2*i+1])
	}
	return lookup, seal, nil
}

// Scheme describes one identifier scheme the module supports.
type Scheme struct {
	Name   string // "nhs", "chi", "hc", "upn", "uln"
	System string // FHIR identifier system URI
}

// Schemes lists the module's schemes, NHS number first.
func (r *Runtime) Schemes(ctx context.Context) ([]Scheme, error) {
	var out []Scheme
	err := r.do(ctx, abi.OpSchemes, func(dst []byte) []byte { return abi.AppendList(dst) }, func(_ *instance, view []byte) error {
		var err error
		out, err = decodeSchemes(view)
		return err
	})
	return out, err
}

// decodeSchemes decodes an OpSchemes response.
func decodeSchemes(view []byte) ([]Scheme, error) {
	items, err := abi.DecodeList(view)
	if err != nil || len(items)%2 != 0 {
		return nil, fmt.Errorf("%w: schemes response malformed", ErrABI)
	}
	out := make([]Scheme, 0, len(items)/2)
	for i := 0; i < len(items); i += 2 {
		out = append(out, Scheme{Name: string(items[i]), System: string(items[i+1])})
	}
	return out, nil
}

// IssuerPublicKey implements [IssuerKeyer] for the in-process evaluator.
func (l localEvaluator) IssuerPublicKey(context.Context, uint32) ([]byte, error) {
	return l.i.PublicKey(), nil
}

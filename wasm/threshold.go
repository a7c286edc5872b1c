package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// The threshold token function. Each (purpose, epoch) has its own key k,
// Shamir-shared among n issuers; any t of them evaluate it and fewer learn
// nothing of it. A token is RFC 9497's VOPRF-mode output of k on the token
// input (scheme system URI | canonical number), equal bit for bit to
// circl's VOPRF for k (a test proves it for every t-subset). The POPRF
// path (Issuer, Runtime.Blind, Runtime.Finalize, Runtime.Tokens) is the
// legacy single-key epoch and is unchanged.
//
// Issuer side, native only: [ShareIssuer] evaluates blinded elements with
// its share. Node side: [VerifyPartial] checks a partial with public data,
// so a node can refuse a bad issuer answer and ask another. Client side,
// in the module (browser, wazero) or natively with the same source
// ([NativeClient]): BlindThreshold, then Combine.

// MaxIssuers bounds n, the issuers of a key set, and the partials one
// Combine takes.
const MaxIssuers = token.MaxIssuers

// maxNodeIDLen bounds a PublicShare's NodeID, as federation node ids are
// bounded.
const maxNodeIDLen = 128

// PublicShare is one issuer's entry in a [KeySet].
type PublicShare struct {
	Index  uint16 `json:"index"`  // Shamir index x_i, 1..65535, unique in the key set
	NodeID string `json:"nodeId"` // the issuer node's id (1..128 bytes, unique in the key set)
	Key    []byte `json:"key"`    // K_i = k_i·G, 32 bytes
}

// KeySet is the public record of one (purpose, epoch) key: the threshold t,
// each issuer's public share and the group key K = k·G. It is public data
// (the DKG's key record, signed by the federation authority); holding it
// lets nobody evaluate. The JSON names are those the browser loader's
// combine takes (bytes in JSON are base64; the page decodes them to
// Uint8Arrays).
type KeySet struct {
	Purpose  string        `json:"purpose"`
	Epoch    uint32        `json:"epoch"`
	T        int           `json:"t"`
	Shares   []PublicShare `json:"shares"`
	GroupKey []byte        `json:"groupKey"` // K, 32 bytes
}

// Validate checks a key set: the purpose rule (package purpose;
// [ErrInvalidPurpose]), and, as [ErrKeySet] with a sentence saying what is
// wrong: 1 ≤ t ≤ n ≤ [MaxIssuers], indices unique and 1..65535, node ids
// non-empty, at most 128 bytes and unique, every key a canonical
// non-identity ristretto255 element, and the shares consistent with each
// other and with K (all on one polynomial of degree t−1, in the exponent),
// so that any t issuers give the same tokens.
func (ks KeySet) Validate() error {
	if err := token.ValidatePurpose(ks.Purpose); err != nil {
		return ErrInvalidPurpose
	}
	ids := make(map[string]bool, len(ks.Shares))
	for _, s := range ks.Shares {
		if len(s.NodeID) == 0 || len(s.NodeID) > maxNodeIDLen {
			return fmt.Errorf("%w: issuer %d: node id must be 1 to %d bytes", ErrKeySet, s.Index, maxNodeIDLen)
		}
		if ids[s.NodeID] {
			return fmt.Errorf("%w: node id %q holds two shares", ErrKeySet, s.NodeID)
		}
		ids[s.NodeID] = true
	}
	return mapDetail(token.CheckKeySet(ks.token()), token.ErrKeySet, ErrKeySet)
}

// token returns the key set as package token takes it.
func (ks KeySet) token() token.KeySet {
	out := token.KeySet{T: ks.T, GroupKey: ks.GroupKey, Shares: make([]token.PublicShare, len(ks.Shares))}
	for i, s := range ks.Shares {
		out.Shares[i] = token.PublicShare{Index: s.Index, Key: s.Key}
	}
	return out
}

// Share returns the public share of the issuer with Shamir index index.
func (ks KeySet) Share(index uint16) (PublicShare, bool) {
	for _, s := range ks.Shares {
		if s.Index == index {
			return s, true
		}
	}
	return PublicShare{}, false
}

// mapDetail maps err like mapErr, but keeps the sentence that follows the
// sentinel when err is from.
func mapDetail(err, from, to error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, from) {
		return fmt.Errorf("%w%s", to, strings.TrimPrefix(err.Error(), from.Error()))
	}
	return mapErr(err)
}

// Partial is one issuer's answer for a batch: Z_i = k_i·B for every blinded
// element B, in order, and one batch DLEQ proof that log_G(K_i) =
// log_B(Z_i) for all of them.
type Partial struct {
	Index     uint16   `json:"index"`     // the issuer's Shamir index
	Evaluated [][]byte `json:"evaluated"` // 32 bytes each, one per blinded element
	Proof     []byte   `json:"proof"`     // 64 bytes
}

// ShareIssuer is an issuer's evaluating half for one (purpose, epoch): it
// holds the share k_i and evaluates blinded elements with it, without
// learning them. It is circl's VOPRF server keyed with k_i, so its cost per
// batch equals circl's VOPRF evaluation. Authorising the caller for the
// purpose, rate limits and audit are the node's job, before Evaluate. Safe
// for concurrent use.
type ShareIssuer struct {
	index  uint16
	server oprf.VerifiableServer
	base   oprf.Server // the same key, for EvaluateUnproven
	pub    []byte
}

// NewShareIssuer loads the share of Shamir index index (1..65535): 32
// bytes, a canonical non-zero ristretto255 scalar, as the DKG writes it. It
// returns [ErrIssuerKey] for anything else. Keep the share secret; never log
// it.
func NewShareIssuer(index uint16, share []byte) (*ShareIssuer, error) {
	if index == 0 || len(share) != token.ScalarSize {
		return nil, ErrIssuerKey
	}
	k := new(oprf.PrivateKey)
	if err := k.UnmarshalBinary(token.Suite, share); err != nil {
		return nil, ErrIssuerKey
	}
	pub, err := k.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("wasm: serialise public share: %w", err)
	}
	return &ShareIssuer{index: index, server: oprf.NewVerifiableServer(token.Suite, k), base: oprf.NewServer(token.Suite, k), pub: pub}, nil
}

// Index returns the issuer's Shamir index.
func (s *ShareIssuer) Index() uint16 { return s.index }

// PublicShare returns K_i = k_i·G (32 bytes), which must equal this
// issuer's key in the [KeySet].
func (s *ShareIssuer) PublicShare() []byte { return append([]byte(nil), s.pub...) }

// Evaluate evaluates a batch of blinded elements (1..4096, from
// BlindThreshold) with the share and returns Z_i per element with one batch
// DLEQ proof against K_i. It refuses an empty or oversized batch
// ([ErrBatchSize]) and malformed or identity elements ([ErrEncoding]).
func (s *ShareIssuer) Evaluate(blinded [][]byte) (evaluated [][]byte, proof []byte, err error) {
	if len(blinded) == 0 || len(blinded) > token.MaxBatch {
		return nil, nil, ErrBatchSize
	}
	elems, err := token.ParseElements(blinded)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	ev, err := s.server.Evaluate(&oprf.EvaluationRequest{Elements: elems})
	if err != nil {
		return nil, nil, fmt.Errorf("wasm: evaluate: %w", err)
	}
	evaluated = make([][]byte, len(ev.Elements))
	for j, e := range ev.Elements {
		if evaluated[j], err = e.MarshalBinaryCompress(); err != nil {
			return nil, nil, fmt.Errorf("wasm: serialise evaluation: %w", err)
		}
	}
	if proof, err = ev.Proof.MarshalBinary(); err != nil {
		return nil, nil, fmt.Errorf("wasm: serialise proof: %w", err)
	}
	return evaluated, proof, nil
}

// EvaluateUnproven is [ShareIssuer.Evaluate] without the proof: Z_i per
// element, a scalar multiplication each where the proof adds about one
// more. Only for the share holder's own tokens, which it combines itself
// (the node's tokenizer): a partial that leaves the holder must carry its
// proof, which every client checks.
func (s *ShareIssuer) EvaluateUnproven(blinded [][]byte) ([][]byte, error) {
	if len(blinded) == 0 || len(blinded) > token.MaxBatch {
		return nil, ErrBatchSize
	}
	elems, err := token.ParseElements(blinded)
	if err != nil {
		return nil, mapErr(err)
	}
	ev, err := s.base.Evaluate(&oprf.EvaluationRequest{Elements: elems})
	if err != nil {
		return nil, fmt.Errorf("wasm: evaluate: %w", err)
	}
	out := make([][]byte, len(ev.Elements))
	for j, e := range ev.Elements {
		if out[j], err = e.MarshalBinaryCompress(); err != nil {
			return nil, fmt.Errorf("wasm: serialise evaluation: %w", err)
		}
	}
	return out, nil
}

// Partial is Evaluate returning a [Partial] under the issuer's index.
func (s *ShareIssuer) Partial(blinded [][]byte) (Partial, error) {
	ev, proof, err := s.Evaluate(blinded)
	if err != nil {
		return Partial{}, err
	}
	return Partial{Index: s.index, Evaluated: ev, Proof: proof}, nil
}

// VerifyPartial checks one issuer's partial evaluation of blinded with
// public data only, natively, so that a node can refuse a bad partial
// (count, audit) and ask another issuer: [ErrPartialIndex] if p.Index is not
// in ks, [ErrMismatch] if the element count differs from blinded's,
// [ErrEncoding] for a malformed element, proof or key, [ErrProofInvalid] if
// the proof does not verify against the issuer's K_i. ks should have passed
// [KeySet.Validate] (which this does not repeat).
func VerifyPartial(ks KeySet, blinded [][]byte, p Partial) error {
	s, ok := ks.Share(p.Index)
	if !ok {
		return ErrPartialIndex
	}
	return mapErr(token.VerifyPartial(s.Key, blinded, p.Evaluated, p.Proof))
}

// ThresholdEvaluator is what the threshold client needs from its node: the
// key set of a (purpose, epoch), and partial evaluations of a batch of
// blinded elements from issuers (at least t, each with its own proof; the
// node asks issuers in parallel and returns the first t valid answers, or
// more). Implementations must be safe for concurrent use.
type ThresholdEvaluator interface {
	KeySet(ctx context.Context, purpose string, epoch uint32) (KeySet, error)
	EvaluatePartials(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([]Partial, error)
}

// VerifyingEvaluator is a [ThresholdEvaluator] that returns only partials
// whose proofs it has verified, against the key set it returned and the
// blinded elements it was given: the node, which checks each issuer's
// answer as it arrives to use the first t valid ones. ThresholdTokens then
// combines them without checking the proofs again (OpCombineVerified),
// which saved about a third of a server-side token. A client that gets its
// partials from elsewhere (a browser, an edge client) must not claim it:
// an unverified partial would give a wrong token, not an error.
type VerifyingEvaluator interface {
	ThresholdEvaluator
	// PartialsVerified reports whether EvaluatePartials verified its answer.
	PartialsVerified() bool
}

// caller runs one module operation: [Runtime] in the module under wazero,
// [NativeClient] through the same handler compiled natively.
type caller interface {
	call(ctx context.Context, op int32, name string, encode func(dst []byte) []byte, decode func(view []byte) error) error
}

// BlindThreshold validates and blinds numbers of one scheme inside the
// module, in VOPRF mode, with blinds from crypto/rand: the first step of
// the threshold client. Send b.Blinded to the issuers (through the node);
// keep b. Errors as [Runtime.Blind].
func (r *Runtime) BlindThreshold(ctx context.Context, scheme string, numbers []string) (*Blinding, error) {
	return blindThreshold(ctx, r, scheme, numbers)
}

// Combine is the threshold client's last step, inside the module: it checks
// ks (as [KeySet.Validate] does, but node ids, which the module does not
// see), verifies partials in ascending issuer index until t verify (a
// partial with a bad proof, a malformed or missing element, an index
// outside ks or one already used is skipped), combines those t (Lagrange
// at 0), unblinds, finalises and derives the keys. Tokens are in the order
// of b.Numbers. b must come from BlindThreshold (a POPRF Blinding's
// partials never verify); the proofs are checked against b.Blinded, the
// elements the issuers were sent. Fewer than t valid partials give
// [ErrTooFewPartials], saying how many verified of how many were needed.
func (r *Runtime) Combine(ctx context.Context, b *Blinding, ks KeySet, partials []Partial) ([]Token, error) {
	return combine(ctx, r, b, ks, partials)
}

// ThresholdTokens runs the whole threshold client for numbers of one
// scheme: the key set and partials from ev, blind and combine in the
// module. Batches above 4096 are split. Tokens are in the order of numbers.
func (r *Runtime) ThresholdTokens(ctx context.Context, ev ThresholdEvaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]Token, error) {
	return thresholdTokens(ctx, r, ev, scheme, numbers, purpose, epoch)
}

// NativeClient is the native twin of the module's threshold client: the
// same handler source (wasm/internal/abi) that the module runs, compiled
// natively, so it gives the same tokens and the same errors as [Runtime]
// (tests prove it) at native speed. Safe for concurrent use if its random
// source is.
type NativeClient struct {
	rnd io.Reader
}

// NewNativeClient returns a native client drawing blinds from rnd
// (crypto/rand if nil), which must be a cryptographic source.
func NewNativeClient(rnd io.Reader) *NativeClient {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &NativeClient{rnd: rnd}
}

// NativeThresholdTokens is NewNativeClient(rnd).ThresholdTokens.
func NativeThresholdTokens(ctx context.Context, rnd io.Reader, ev ThresholdEvaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]Token, error) {
	return NewNativeClient(rnd).ThresholdTokens(ctx, ev, scheme, numbers, purpose, epoch)
}

// BlindThreshold is [Runtime.BlindThreshold], natively.
func (c *NativeClient) BlindThreshold(ctx context.Context, scheme string, numbers []string) (*Blinding, error) {
	return blindThreshold(ctx, c, scheme, numbers)
}

// Combine is [Runtime.Combine], natively.
func (c *NativeClient) Combine(ctx context.Context, b *Blinding, ks KeySet, partials []Partial) ([]Token, error) {
	return combine(ctx, c, b, ks, partials)
}

// ThresholdTokens is [Runtime.ThresholdTokens], natively.
func (c *NativeClient) ThresholdTokens(ctx context.Context, ev ThresholdEvaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]Token, error) {
	return thresholdTokens(ctx, c, ev, scheme, numbers, purpose, epoch)
}

func blindThreshold(ctx context.Context, c caller, scheme string, numbers []string) (*Blinding, error) {
	if len(numbers) == 0 || len(numbers) > token.MaxBatch {
		return nil, ErrBatchSize
	}
	b := &Blinding{Scheme: scheme, Numbers: append([]string(nil), numbers...), verifiable: true}
	decode := func(view []byte) error { return decodeBlind(view, len(numbers), b) }
	if err := c.call(ctx, abi.OpBlindVerifiable, "blind threshold", encodeSchemeInputs(scheme, numbers), decode); err != nil {
		return nil, err
	}
	return b, nil
}

func combine(ctx context.Context, c caller, b *Blinding, ks KeySet, partials []Partial) ([]Token, error) {
	return combineOp(ctx, c, checkedCombine(b), b, ks, partials)
}

// checkedCombine is the op that checks every proof: OpCombineBlinded when
// b came from BlindThreshold with its blinded elements (the module need not
// derive them again), else OpCombine, which derives them — so that a POPRF
// Blinding's partials, or a hand-made Blinding's, fail their proofs rather
// than give wrong tokens.
func checkedCombine(b *Blinding) int32 {
	if b.verifiable && len(b.Blinded) == len(b.Numbers) {
		return abi.OpCombineBlinded
	}
	return abi.OpCombine
}

// combineOp runs OpCombine, OpCombineVerified or OpCombineBlinded (the
// same request, with each number's blinded element for the last).
func combineOp(ctx context.Context, c caller, op int32, b *Blinding, ks KeySet, partials []Partial) ([]Token, error) {
	n := len(b.Numbers)
	if n == 0 || n > token.MaxBatch {
		return nil, ErrBatchSize
	}
	if len(b.Blinds) != n {
		return nil, ErrMismatch
	}
	if len(partials) > MaxIssuers || len(ks.Shares) > MaxIssuers {
		return nil, fmt.Errorf("%w: more than %d issuers or partials", ErrKeySet, MaxIssuers)
	}
	encode := func(dst []byte) []byte {
		e := abi.Encoder{Buf: dst}
		per := 2
		if op == abi.OpCombineBlinded {
			per = 3
		}
		e.Begin(3 + per*n)
		e.String(b.Scheme)
		e.Bytes(abi.AppendKeySet(nil, abi.KeySet{Purpose: ks.Purpose, Epoch: ks.Epoch, KeySet: ks.token()}))
		e.Bytes(abi.AppendPartials(nil, partialsToken(partials)))
		for i := range n {
			e.String(b.Numbers[i])
			e.Bytes(b.Blinds[i])
			if per == 3 {
				e.Bytes(b.Blinded[i])
			}
		}
		return e.Buf
	}
	toks := make([]Token, n)
	decode := func(view []byte) error { return decodeFinalize(view, toks) }
	if err := c.call(ctx, op, "combine", encode, decode); err != nil {
		return nil, err
	}
	return toks, nil
}

func partialsToken(ps []Partial) []token.Partial {
	out := make([]token.Partial, len(ps))
	for i, p := range ps {
		out[i] = token.Partial{Index: p.Index, Evaluated: p.Evaluated, Proof: p.Proof}
	}
	return out
}

func thresholdTokens(ctx context.Context, c caller, ev ThresholdEvaluator, scheme string, numbers []string, purpose string, epoch uint32) ([]Token, error) {
	if err := token.ValidatePurpose(purpose); err != nil {
		return nil, ErrInvalidPurpose
	}
	if len(numbers) == 0 {
		return nil, ErrBatchSize
	}
	ks, err := ev.KeySet(ctx, purpose, epoch)
	if err != nil {
		return nil, fmt.Errorf("wasm: key set: %w", err)
	}
	if ks.Purpose != purpose || ks.Epoch != epoch {
		return nil, fmt.Errorf("%w: the evaluator returned the key set of purpose %q epoch %d for purpose %q epoch %d", ErrKeySet, ks.Purpose, ks.Epoch, purpose, epoch)
	}
	verified := false
	if v, ok := ev.(VerifyingEvaluator); ok && v.PartialsVerified() {
		verified = true
	}
	out := make([]Token, 0, len(numbers))
	for start := 0; start < len(numbers); start += token.MaxBatch {
		chunk := numbers[start:min(start+token.MaxBatch, len(numbers))]
		b, err := blindThreshold(ctx, c, scheme, chunk)
		if err != nil {
			return nil, err
		}
		partials, err := ev.EvaluatePartials(ctx, purpose, epoch, b.Blinded)
		if err != nil {
			return nil, fmt.Errorf("wasm: evaluate partials: %w", err)
		}
		op := checkedCombine(b)
		if verified {
			op = abi.OpCombineVerified
		}
		toks, err := combineOp(ctx, c, op, b, ks, partials)
		if err != nil {
			return nil, err
		}
		out = append(out, toks...)
	}
	return out, nil
}

var (
	_ caller = (*Runtime)(nil)
	_ caller = (*NativeClient)(nil)
)

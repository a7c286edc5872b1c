package token

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/math/polynomial"
	"github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/zk/dleq"
)

// MaxIssuers bounds n, the number of issuers in a key set, and the number
// of partial evaluations one [Combine] takes.
const MaxIssuers = 64

// Errors of the threshold token function.
var (
	ErrKeySet         = errors.New("token: invalid key set")
	ErrTooFewPartials = errors.New("token: too few valid partial evaluations")
)

// PublicShare is one issuer's public key share K_i = k_i·G under its
// Shamir index x_i (1..65535).
type PublicShare struct {
	Index uint16
	Key   []byte // [ElementSize] bytes
}

// KeySet is the public half of one (purpose, epoch) key: the threshold t,
// every issuer's public share and the group key K = k·G.
type KeySet struct {
	T        int
	GroupKey []byte // [ElementSize] bytes
	Shares   []PublicShare
}

// Partial is one issuer's evaluation of a batch of blinded elements with its
// share, Z_i = k_i·B, and its batch DLEQ proof against K_i.
type Partial struct {
	Index     uint16
	Evaluated [][]byte // one [ElementSize] element per blinded element
	Proof     []byte   // [ProofSize] bytes
}

// dleqParams are the DLEQ parameters of RFC 9497's VOPRF mode, as circl's
// oprf package builds them (params.getDLEQParams with mode 0x01): the
// suite's group and hash, and the context string
// "OPRFV1-" ‖ 0x01 ‖ "-" ‖ suite identifier as the domain separation tag.
var dleqParams = dleq.Params{
	G:   Suite.Group(),
	H:   Suite.Hash(),
	DST: append([]byte("OPRFV1-"+string([]byte{oprf.VerifiableMode, '-'})), Suite.Identifier()...),
}

// parsedKeySet is a [KeySet] decoded and checked.
type parsedKeySet struct {
	t      int
	group  *oprf.PublicKey
	shares map[uint16]group.Element
}

// CheckKeySet checks a key set: 1 ≤ t ≤ n ≤ [MaxIssuers], indices unique
// and non-zero, every key a valid non-identity element, and the shares
// consistent: K and every K_j lie on the one polynomial of degree t−1
// through the t shares of lowest index (in the exponent). So any t shares
// combine to the same key, and any t valid partials to the same tokens.
// Errors wrap [ErrKeySet].
func CheckKeySet(ks KeySet) error {
	_, err := parseKeySet(ks)
	return err
}

// keySets holds the key sets parsed most recently. A node, a page or an
// edge client combines under the same few keys again and again, and
// checking one costs about t·(n−t+1) scalar multiplications — for a single
// number, as much as the rest of the combine. A parsed key set is never
// modified, so one may be shared. Bounded: when full it is emptied.
var keySets struct {
	sync.Mutex
	m map[string]*parsedKeySet
}

const keySetCacheSize = 16

// parseKeySetCached is [parseKeySet] through the cache; only a key set
// that checks is kept.
func parseKeySetCached(ks KeySet) (*parsedKeySet, error) {
	key := keySetKey(ks)
	keySets.Lock()
	p, ok := keySets.m[key]
	keySets.Unlock()
	if ok {
		return p, nil
	}
	p, err := parseKeySet(ks)
	if err != nil {
		return nil, err
	}
	keySets.Lock()
	if keySets.m == nil || len(keySets.m) >= keySetCacheSize {
		keySets.m = make(map[string]*parsedKeySet, keySetCacheSize)
	}
	keySets.m[key] = p
	keySets.Unlock()
	return p, nil
}

// keySetKey is an unambiguous encoding of a key set: t, the group key and
// each share's index and key, every variable-length field length-prefixed.
func keySetKey(ks KeySet) string {
	b := make([]byte, 0, 12+len(ks.GroupKey)+len(ks.Shares)*(6+ElementSize))
	b = binary.BigEndian.AppendUint64(b, uint64(ks.T))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ks.GroupKey)))
	b = append(b, ks.GroupKey...)
	for _, s := range ks.Shares {
		b = binary.BigEndian.AppendUint16(b, s.Index)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s.Key)))
		b = append(b, s.Key...)
	}
	return string(b)
}

func parseKeySet(ks KeySet) (*parsedKeySet, error) {
	n := len(ks.Shares)
	if n == 0 || n > MaxIssuers {
		return nil, fmt.Errorf("%w: %d issuers, must be between 1 and %d", ErrKeySet, n, MaxIssuers)
	}
	if ks.T < 1 || ks.T > n {
		return nil, fmt.Errorf("%w: threshold %d, must be between 1 and the %d issuers", ErrKeySet, ks.T, n)
	}
	pk, err := ParsePublicKey(ks.GroupKey)
	if err != nil {
		return nil, fmt.Errorf("%w: group key is not a valid element", ErrKeySet)
	}
	// circl's PublicKey does not expose its element; the check below needs it.
	groupKey, err := parseElement(ks.GroupKey)
	if err != nil {
		return nil, fmt.Errorf("%w: group key is not a valid element", ErrKeySet)
	}
	p := &parsedKeySet{t: ks.T, group: pk, shares: make(map[uint16]group.Element, n)}
	for _, s := range ks.Shares {
		if s.Index == 0 {
			return nil, fmt.Errorf("%w: issuer index 0 (indices start at 1)", ErrKeySet)
		}
		if _, dup := p.shares[s.Index]; dup {
			return nil, fmt.Errorf("%w: issuer index %d appears twice", ErrKeySet, s.Index)
		}
		e, err := parseElement(s.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: public share of issuer %d is not a valid element", ErrKeySet, s.Index)
		}
		p.shares[s.Index] = e
	}
	idx := sortedIndices(p.shares)
	base := idx[:ks.T]
	g := Suite.Group()
	xs := indexScalars(base)
	ks0 := make([]group.Element, len(base))
	for i, x := range base {
		ks0[i] = p.shares[x]
	}
	if !interpolate(xs, ks0, g.NewScalar()).IsEqual(groupKey) {
		return nil, fmt.Errorf("%w: the group key does not match the public shares", ErrKeySet)
	}
	for _, x := range idx[ks.T:] {
		if !interpolate(xs, ks0, g.NewScalar().SetUint64(uint64(x))).IsEqual(p.shares[x]) {
			return nil, fmt.Errorf("%w: the public share of issuer %d is not on the polynomial of the others", ErrKeySet, x)
		}
	}
	return p, nil
}

// interpolate returns Σ L_i(at)·points[i], the polynomial through
// (xs[i], points[i]) evaluated at at, in the exponent.
func interpolate(xs []group.Scalar, points []group.Element, at group.Scalar) group.Element {
	g := Suite.Group()
	sum := g.Identity()
	term := g.NewElement()
	for i := range xs {
		term.Mul(points[i], polynomial.LagrangeBase(uint(i), xs, at))
		sum.Add(sum, term)
	}
	return sum
}

func sortedIndices(m map[uint16]group.Element) []uint16 {
	idx := make([]uint16, 0, len(m))
	for x := range m {
		idx = append(idx, x)
	}
	slices.Sort(idx)
	return idx
}

func indexScalars(idx []uint16) []group.Scalar {
	g := Suite.Group()
	xs := make([]group.Scalar, len(idx))
	for i, x := range idx {
		xs[i] = g.NewScalar().SetUint64(uint64(x))
	}
	return xs
}

// parseElement decodes one element as [ParseElements] does.
func parseElement(b []byte) (group.Element, error) {
	e, err := ParseElements([][]byte{b})
	if err != nil {
		return nil, err
	}
	return e[0], nil
}

// BlindVerifiable is [Blind] for the threshold token function: it blinds in
// RFC 9497's VOPRF mode (mode 0x01), whose hash-to-group domain differs
// from the POPRF mode's, so its blinded elements are for [Combine] only.
func BlindVerifiable(rnd io.Reader, inputs [][]byte) (blinds, blinded [][]byte, err error) {
	scalars, blinds, err := drawBlinds(rnd, inputs)
	if err != nil {
		return nil, nil, err
	}
	// Blinding does not use the key; circl requires one: the generator
	// stands in.
	_, req, err := oprf.NewVerifiableClient(Suite, generatorKey()).DeterministicBlind(inputs, scalars)
	if err != nil {
		return nil, nil, fmt.Errorf("token: blind: %w", err)
	}
	if blinded, err = marshalElements(req.Elements); err != nil {
		return nil, nil, fmt.Errorf("token: serialise blinded element: %w", err)
	}
	return blinds, blinded, nil
}

// VerifyPartial checks one issuer's partial evaluation of blinded against
// its public share key: [ErrMismatch] if the counts differ, [ErrEncoding]
// for a malformed key, element or proof, [ErrProofInvalid] if the batch
// DLEQ proof does not show log_G(key) = log_B(Z) for every pair.
func VerifyPartial(key []byte, blinded, evaluated [][]byte, proof []byte) error {
	if len(blinded) == 0 || len(blinded) > MaxBatch {
		return ErrBatchSize
	}
	k, err := parseElement(key)
	if err != nil {
		return ErrEncoding
	}
	b, err := ParseElements(blinded)
	if err != nil {
		return err
	}
	_, err = verifyPartial(k, b, evaluated, proof)
	return err
}

// verifyPartial verifies a partial against a parsed share and blinded
// elements and returns its parsed evaluated elements.
func verifyPartial(key group.Element, blinded []group.Element, evaluated [][]byte, proof []byte) ([]group.Element, error) {
	if len(evaluated) != len(blinded) {
		return nil, ErrMismatch
	}
	z, err := ParseElements(evaluated)
	if err != nil {
		return nil, err
	}
	if len(proof) != ProofSize {
		return nil, ErrEncoding
	}
	p := new(dleq.Proof)
	if err := p.UnmarshalBinary(dleqParams.G, proof); err != nil {
		return nil, ErrEncoding
	}
	// VOPRF mode proves (G, K_i) and (B_j, Z_j): the blinded elements are
	// the bases, as circl's VerifiableClient checks them.
	if !(dleq.Verifier{Params: dleqParams}).VerifyBatchRFC9497(key, blinded, z, p) {
		return nil, ErrProofInvalid
	}
	return z, nil
}

// Combine is the threshold client's last step. It checks the key set
// ([CheckKeySet]), re-derives the VOPRF-mode blinded elements from inputs
// and blinds (as [BlindVerifiable] made them), verifies partials in
// ascending issuer index until t have verified, combines those t with the
// Lagrange coefficients at 0 into Z = k·B, and finalises as RFC 9497 does
// for key k. It returns one token per input.
//
// A partial that names an index outside the key set, repeats an index
// already verified, has the wrong number of elements, a malformed element
// or proof, or a proof that does not verify is skipped: an issuer's fault
// must not stop the client while t others answered well. Fewer than t
// verified partials give [ErrTooFewPartials], saying how many verified of
// how many were needed.
func Combine(ks KeySet, inputs, blinds [][]byte, partials []Partial) ([][]byte, error) {
	p, scalars, err := combineArgs(ks, inputs, blinds, partials)
	if err != nil {
		return nil, err
	}
	_, req, err := oprf.NewVerifiableClient(Suite, p.group).DeterministicBlind(inputs, scalars)
	if err != nil {
		return nil, fmt.Errorf("token: re-blind: %w", err)
	}
	return combineChecked(p, inputs, scalars, req.Elements, partials)
}

// CombineBlinded is [Combine] given the blinded elements too, as
// [BlindVerifiable] returned them and as they went to the issuers, instead
// of deriving them again from inputs and blinds (a hash to the group and a
// scalar multiplication per input, a fifth of a client's combine). Every
// proof is checked against them. Elements that are not the ones blinds
// made from inputs give wrong tokens (the caller's own), never a token
// under another key.
func CombineBlinded(ks KeySet, inputs, blinds, blinded [][]byte, partials []Partial) ([][]byte, error) {
	p, scalars, err := combineArgs(ks, inputs, blinds, partials)
	if err != nil {
		return nil, err
	}
	if len(blinded) != len(inputs) {
		return nil, ErrMismatch
	}
	b, err := ParseElements(blinded)
	if err != nil {
		return nil, err
	}
	return combineChecked(p, inputs, scalars, b, partials)
}

// combineChecked verifies partials against the blinded elements until t
// verify, and combines those.
func combineChecked(p *parsedKeySet, inputs [][]byte, scalars []group.Scalar, blinded []group.Element, partials []Partial) ([][]byte, error) {
	used, elements, rejected := pickPartials(p, partials, func(key group.Element, pt Partial) ([]group.Element, error) {
		return verifyPartial(key, blinded, pt.Evaluated, pt.Proof)
	})
	if len(used) < p.t {
		return nil, fmt.Errorf("%w: %d valid of %d needed (%d given, %d rejected)", ErrTooFewPartials, len(used), p.t, len(partials), rejected)
	}
	return finish(inputs, scalars, used, elements)
}

// CombineVerified is [Combine] for partials whose proofs the caller has
// verified already, against the same key set and the blinded elements it
// made from these inputs and blinds: the node checks each issuer's answer
// as it arrives, to use the first t valid ones and to audit a bad one, and
// checking them a second time here cost a third of a server-side token.
// It neither re-derives the blinded elements nor checks a proof; it takes
// partials in ascending index, skipping an index outside the key set, a
// repeated index, the wrong number of elements or a malformed element, and
// combines the first t. A caller that has not verified the partials must
// use [Combine]: an unverified partial here gives a wrong token, not an
// error.
func CombineVerified(ks KeySet, inputs, blinds [][]byte, partials []Partial) ([][]byte, error) {
	p, scalars, err := combineArgs(ks, inputs, blinds, partials)
	if err != nil {
		return nil, err
	}
	used, elements, rejected := pickPartials(p, partials, func(_ group.Element, pt Partial) ([]group.Element, error) {
		if len(pt.Evaluated) != len(inputs) {
			return nil, ErrMismatch
		}
		return ParseElements(pt.Evaluated)
	})
	if len(used) < p.t {
		// Combine's words: the node's errors read the same either way.
		return nil, fmt.Errorf("%w: %d valid of %d needed (%d given, %d rejected)", ErrTooFewPartials, len(used), p.t, len(partials), rejected)
	}
	return finish(inputs, scalars, used, elements)
}

// combineArgs checks what [Combine] and [CombineVerified] are given and
// parses the key set and the blinds.
func combineArgs(ks KeySet, inputs, blinds [][]byte, partials []Partial) (*parsedKeySet, []group.Scalar, error) {
	if len(inputs) == 0 || len(inputs) > MaxBatch {
		return nil, nil, ErrBatchSize
	}
	if len(blinds) != len(inputs) {
		return nil, nil, ErrMismatch
	}
	if len(partials) > MaxIssuers {
		return nil, nil, fmt.Errorf("%w: %d partial evaluations, at most %d", ErrBatchSize, len(partials), MaxIssuers)
	}
	p, err := parseKeySetCached(ks)
	if err != nil {
		return nil, nil, err
	}
	scalars, err := parseBlinds(blinds)
	if err != nil {
		return nil, nil, err
	}
	return p, scalars, nil
}

// pickPartials takes partials in ascending issuer index and keeps the first
// t that name an issuer of the key set, do not repeat one, and pass check,
// which returns the partial's parsed elements.
func pickPartials(p *parsedKeySet, partials []Partial, check func(key group.Element, pt Partial) ([]group.Element, error)) (used []uint16, elements [][]group.Element, rejected int) {
	order := make([]int, len(partials))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(partials[a].Index, partials[b].Index) })
	for _, i := range order {
		if len(used) == p.t {
			break
		}
		pt := partials[i]
		key, ok := p.shares[pt.Index]
		if !ok || slices.Contains(used, pt.Index) {
			rejected++
			continue
		}
		z, err := check(key, pt)
		if err != nil {
			rejected++
			continue
		}
		used = append(used, pt.Index)
		elements = append(elements, z)
	}
	return used, elements, rejected
}

// finish combines t partial evaluations Z_i = k_i·B of the blinded inputs
// B = r·H(x) with the Lagrange coefficients λ_i at 0 and unblinds them in
// one step, N = Σ (λ_i·r⁻¹)·Z_i = k·H(x) (t scalar multiplications per
// input where combining, then unblinding, takes t+1), and finalises as RFC
// 9497 §3.3.1 does in OPRF and VOPRF mode:
// Hash(len ‖ x ‖ len ‖ N ‖ "Finalize"). Tests hold the result to circl's
// own VOPRF client for the same key.
func finish(inputs [][]byte, blinds []group.Scalar, idx []uint16, elements [][]group.Element) ([][]byte, error) {
	g := Suite.Group()
	xs := indexScalars(idx)
	zero := g.NewScalar()
	lambdas := make([]group.Scalar, len(xs))
	for i := range xs {
		lambdas[i] = polynomial.LagrangeBase(uint(i), xs, zero)
	}
	h := Suite.Hash().New()
	out := make([][]byte, len(inputs))
	inv, coef := g.NewScalar(), g.NewScalar()
	term, sum := g.NewElement(), g.NewElement()
	var lenBuf [2]byte
	for j, x := range inputs {
		if len(x) > 0xffff {
			return nil, fmt.Errorf("%w: input of %d bytes", ErrEncoding, len(x))
		}
		inv.Inv(blinds[j])
		sum.Set(g.Identity())
		for i := range lambdas {
			coef.Mul(lambdas[i], inv)
			term.Mul(elements[i][j], coef)
			sum.Add(sum, term)
		}
		n, err := sum.MarshalBinaryCompress()
		if err != nil {
			return nil, fmt.Errorf("token: serialise unblinded element: %w", err)
		}
		h.Reset()
		binary.BigEndian.PutUint16(lenBuf[:], uint16(len(x)))
		h.Write(lenBuf[:])
		h.Write(x)
		binary.BigEndian.PutUint16(lenBuf[:], uint16(len(n)))
		h.Write(lenBuf[:])
		h.Write(n)
		h.Write([]byte(finalizeDST))
		out[j] = h.Sum(nil)
	}
	return out, nil
}

// finalizeDST ends RFC 9497's Finalize hash input.
const finalizeDST = "Finalize"

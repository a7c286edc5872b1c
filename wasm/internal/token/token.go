package token

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/zk/dleq"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

// Suite is the RFC 9497 suite of every Signpost token (POPRF and VOPRF mode).
var Suite = oprf.SuiteRistretto255

// Sizes of the serialised values of the suite.
const (
	ScalarSize  = 32 // a blind or a private key
	ElementSize = 32 // a blinded or evaluated element, a public key
	ProofSize   = 64 // a batch DLEQ proof (two scalars)
	TokenSize   = 64 // SHA-512 output
	// MaxBatch bounds how many inputs one Blind, Finalize or evaluation takes.
	MaxBatch = 4096
)

// Labels of the key derivation.
const (
	InfoPrefix     = "signpost/v1|"
	LookupKeyLabel = "signpost/v1 lookup-key"
	SealKeyLabel   = "signpost/v1 seal-key"
)

// Errors callers branch on.
var (
	ErrInvalidPurpose = fmt.Errorf("token: %w", purpose.ErrInvalid)
	ErrInvalidEpoch   = errors.New("token: epoch must be a decimal uint32")
	ErrBatchSize      = errors.New("token: batch must hold between 1 and 4096 inputs")
	ErrMismatch       = errors.New("token: inputs, blinds and evaluations differ in number")
	ErrEncoding       = errors.New("token: malformed scalar, element or proof")
	ErrProofInvalid   = errors.New("token: evaluation proof does not verify")
	ErrPublicKey      = errors.New("token: invalid issuer public key")
)

// ValidatePurpose returns [ErrInvalidPurpose] (which wraps
// [purpose.ErrInvalid]) if p breaks the one purpose rule of package purpose.
func ValidatePurpose(p string) error {
	if purpose.Validate(p) != nil {
		return ErrInvalidPurpose
	}
	return nil
}

// Info is the POPRF public info for a purpose and epoch:
// "signpost/v1|" + purpose + "|" + decimal epoch.
func Info(p string, epoch uint32) ([]byte, error) {
	if err := ValidatePurpose(p); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(InfoPrefix)+len(p)+11)
	b = append(b, InfoPrefix...)
	b = append(b, p...)
	b = append(b, '|')
	return strconv.AppendUint(b, uint64(epoch), 10), nil
}

// ParseEpoch parses a decimal uint32 without sign, spaces or leading zeros.
func ParseEpoch(s string) (uint32, error) {
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, ErrInvalidEpoch
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, ErrInvalidEpoch
	}
	return uint32(v), nil
}

// Blind blinds each input with a fresh scalar drawn from rnd. It returns the
// serialised blinds (keep them; they unblind the evaluation) and the
// serialised blinded elements (send them to the issuer).
func Blind(rnd io.Reader, inputs [][]byte) (blinds, blinded [][]byte, err error) {
	scalars, blinds, err := drawBlinds(rnd, inputs)
	if err != nil {
		return nil, nil, err
	}
	// The mode is part of the hash-to-group domain separation: blind as the
	// POPRF client that will finalize. Blinding does not use the issuer's
	// key, but circl requires one: the group generator stands in.
	_, req, err := oprf.NewPartialObliviousClient(Suite, generatorKey()).DeterministicBlind(inputs, scalars)
	if err != nil {
		return nil, nil, fmt.Errorf("token: blind: %w", err)
	}
	if blinded, err = marshalElements(req.Elements); err != nil {
		return nil, nil, fmt.Errorf("token: serialise blinded element: %w", err)
	}
	return blinds, blinded, nil
}

// drawBlinds draws one blind per input from rnd and returns them both as
// scalars and serialised.
func drawBlinds(rnd io.Reader, inputs [][]byte) (scalars []oprf.Blind, blinds [][]byte, err error) {
	if len(inputs) == 0 || len(inputs) > MaxBatch {
		return nil, nil, ErrBatchSize
	}
	scalars = make([]oprf.Blind, len(inputs))
	blinds = make([][]byte, len(inputs))
	for i := range inputs {
		s, err := randomScalar(rnd)
		if err != nil {
			return nil, nil, err
		}
		scalars[i] = s
		if blinds[i], err = s.MarshalBinary(); err != nil {
			return nil, nil, fmt.Errorf("token: serialise blind: %w", err)
		}
	}
	return scalars, blinds, nil
}

// marshalElements serialises group elements ([ElementSize] bytes each).
func marshalElements(elems []group.Element) ([][]byte, error) {
	out := make([][]byte, len(elems))
	for i, e := range elems {
		b, err := e.MarshalBinaryCompress()
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// generatorKey returns the group generator as a public key.
func generatorKey() *oprf.PublicKey {
	b, err := Suite.Group().Generator().MarshalBinaryCompress()
	if err != nil {
		panic("token: serialise generator: " + err.Error())
	}
	pk, err := ParsePublicKey(b)
	if err != nil {
		panic("token: generator as key: " + err.Error())
	}
	return pk
}

// randomScalar draws a non-zero scalar from rnd: 32 bytes with the top four
// bits cleared, i.e. uniform below 2^252, which is within 2^-126 of uniform
// modulo the group order (2^252 + 2.8·10^37). circl's own RandomScalar for
// ristretto255 ignores the reader it is given; this one honours it, so the
// host decides where blinds come from.
func randomScalar(rnd io.Reader) (group.Scalar, error) {
	var b [ScalarSize]byte
	for range 8 { // a zero scalar is a broken source, not bad luck
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("token: random source: %w", err)
		}
		b[31] &= 0x0f // little-endian: clear the top four bits
		s := Suite.Group().NewScalar()
		if err := s.UnmarshalBinary(b[:]); err != nil {
			return nil, fmt.Errorf("token: random scalar: %w", err)
		}
		if !s.IsZero() {
			return s, nil
		}
	}
	return nil, errors.New("token: random source returns zeros")
}

// ParsePublicKey decodes an issuer public key (a non-identity element).
func ParsePublicKey(b []byte) (*oprf.PublicKey, error) {
	if len(b) != ElementSize {
		return nil, ErrPublicKey
	}
	pk := new(oprf.PublicKey)
	if err := pk.UnmarshalBinary(Suite, b); err != nil {
		return nil, ErrPublicKey
	}
	return pk, nil
}

// Finalize verifies the issuer's proof over the evaluation of the blinded
// inputs and returns one token per input. pub is the issuer's public key;
// info comes from [Info].
func Finalize(pub, info []byte, inputs, blinds, evaluated [][]byte, proof []byte) ([][]byte, error) {
	if len(inputs) == 0 || len(inputs) > MaxBatch {
		return nil, ErrBatchSize
	}
	if len(blinds) != len(inputs) || len(evaluated) != len(inputs) {
		return nil, ErrMismatch
	}
	pk, err := ParsePublicKey(pub)
	if err != nil {
		return nil, err
	}
	g := Suite.Group()
	scalars, err := parseBlinds(blinds)
	if err != nil {
		return nil, err
	}
	elems, err := ParseElements(evaluated)
	if err != nil {
		return nil, err
	}
	if len(proof) != ProofSize {
		return nil, ErrEncoding
	}
	p := new(dleq.Proof)
	if err := p.UnmarshalBinary(g, proof); err != nil {
		return nil, ErrEncoding
	}
	client := oprf.NewPartialObliviousClient(Suite, pk)
	fd, _, err := client.DeterministicBlind(inputs, scalars)
	if err != nil {
		return nil, fmt.Errorf("token: re-blind: %w", err)
	}
	out, err := client.Finalize(fd, &oprf.Evaluation{Elements: elems, Proof: p}, info)
	if errors.Is(err, oprf.ErrInvalidProof) {
		return nil, ErrProofInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("token: finalize: %w", err)
	}
	return out, nil
}

// parseBlinds decodes serialised blinds, refusing zero and anything that is
// not exactly [ScalarSize] bytes of a canonical scalar.
func parseBlinds(blinds [][]byte) ([]oprf.Blind, error) {
	g := Suite.Group()
	scalars := make([]oprf.Blind, len(blinds))
	for i, b := range blinds {
		if len(b) != ScalarSize {
			return nil, ErrEncoding
		}
		s := g.NewScalar()
		if err := s.UnmarshalBinary(b); err != nil || s.IsZero() {
			return nil, ErrEncoding
		}
		scalars[i] = s
	}
	return scalars, nil
}

// ParseElements decodes serialised group elements, refusing the identity and
// anything that is not exactly [ElementSize] bytes.
func ParseElements(bs [][]byte) ([]group.Element, error) {
	g := Suite.Group()
	elems := make([]group.Element, len(bs))
	for i, b := range bs {
		if len(b) != ElementSize {
			return nil, ErrEncoding
		}
		e := g.NewElement()
		if err := e.UnmarshalBinary(b); err != nil || e.IsIdentity() {
			return nil, ErrEncoding
		}
		elems[i] = e
	}
	return elems, nil
}

// DeriveKeys derives the lookup key and the seal key from a token with
// HKDF-SHA256, empty salt, and the labels [LookupKeyLabel] and [SealKeyLabel].
func DeriveKeys(tok []byte) (lookup [16]byte, seal [32]byte) {
	prk, err := hkdf.Extract(sha256.New, tok, nil)
	if err != nil {
		panic("token: hkdf extract: " + err.Error()) // cannot happen for SHA-256
	}
	l, err := hkdf.Expand(sha256.New, prk, LookupKeyLabel, len(lookup))
	if err != nil {
		panic("token: hkdf expand: " + err.Error())
	}
	s, err := hkdf.Expand(sha256.New, prk, SealKeyLabel, len(seal))
	if err != nil {
		panic("token: hkdf expand: " + err.Error())
	}
	copy(lookup[:], l)
	copy(seal[:], s)
	return lookup, seal
}

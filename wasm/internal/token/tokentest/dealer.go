// Package tokentest is a trusted dealer for tests of the threshold token
// function: it makes a key k, Shamir-shares it (circl's polynomial; circl's secretsharing recovers it)
// and returns the shares, the public key set and k itself. It exists so that
// tests can compare a threshold evaluation with circl's own VOPRF for the
// same k. Production keys are never dealt: no machine ever holds k; the
// issuers make their shares with the distributed key generation
// (federation/dkg). Only _test.go files import this package.
package tokentest

import (
	"fmt"
	"io"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/math/polynomial"
	"github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/secretsharing"

	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// Dealt is the output of [Deal].
type Dealt struct {
	// Key is k, serialised (32 bytes): the whole token key.
	Key []byte
	// Shares[i] is k_{i+1}, serialised, the share of Shamir index i+1.
	Shares [][]byte
	// KeySet is the public key set: t, K = k·G and every K_i.
	KeySet token.KeySet
}

// Deal draws k and the polynomial's other coefficients from rnd (the same
// reader gives the same deal, so a seeded test replays) and shares k t-of-n
// with Shamir indices 1..n.
func Deal(rnd io.Reader, t, n int) (Dealt, error) {
	if t < 1 || t > n || n > token.MaxIssuers {
		return Dealt{}, fmt.Errorf("tokentest: cannot deal %d of %d", t, n)
	}
	g := token.Suite.Group()
	coeffs := make([]group.Scalar, t)
	for i := range coeffs {
		s, err := scalar(rnd)
		if err != nil {
			return Dealt{}, err
		}
		coeffs[i] = s
	}
	k := coeffs[0]
	poly := polynomial.New(coeffs)
	d := Dealt{KeySet: token.KeySet{T: t}}
	var err error
	if d.Key, err = k.MarshalBinary(); err != nil {
		return Dealt{}, err
	}
	if d.KeySet.GroupKey, err = g.NewElement().MulGen(k).MarshalBinaryCompress(); err != nil {
		return Dealt{}, err
	}
	for i := 1; i <= n; i++ {
		v := poly.Evaluate(g.NewScalar().SetUint64(uint64(i)))
		b, err := v.MarshalBinary()
		if err != nil {
			return Dealt{}, err
		}
		pub, err := g.NewElement().MulGen(v).MarshalBinaryCompress()
		if err != nil {
			return Dealt{}, err
		}
		d.Shares = append(d.Shares, b)
		d.KeySet.Shares = append(d.KeySet.Shares, token.PublicShare{Index: uint16(i), Key: pub})
	}
	return d, nil
}

// scalar draws a non-zero scalar from rnd (uniform below 2^252; circl's
// RandomScalar for ristretto255 ignores its reader).
func scalar(rnd io.Reader) (group.Scalar, error) {
	var b [token.ScalarSize]byte
	for {
		if _, err := io.ReadFull(rnd, b[:]); err != nil {
			return nil, fmt.Errorf("tokentest: random source: %w", err)
		}
		b[31] &= 0x0f
		s := token.Suite.Group().NewScalar()
		if err := s.UnmarshalBinary(b[:]); err != nil {
			return nil, err
		}
		if !s.IsZero() {
			return s, nil
		}
	}
}

// Recover reconstructs k from the shares of the given indices (at least t)
// with circl's secretsharing, for tests that must prove a key was never
// written down anywhere but can be rebuilt from t shares.
func Recover(t int, indices []uint16, shares [][]byte) ([]byte, error) {
	g := token.Suite.Group()
	ss := make([]secretsharing.Share, len(shares))
	for i, b := range shares {
		v := g.NewScalar()
		if err := v.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("tokentest: share %d: %w", i, err)
		}
		ss[i] = secretsharing.Share{ID: g.NewScalar().SetUint64(uint64(indices[i])), Value: v}
	}
	k, err := secretsharing.Recover(uint(t-1), ss)
	if err != nil {
		return nil, err
	}
	return k.MarshalBinary()
}

// Partial evaluates blinded with the share of Shamir index index (1..n) as
// an issuer does: circl's VOPRF server keyed with k_i, one batch proof.
func (d Dealt) Partial(index uint16, blinded [][]byte) (token.Partial, error) {
	if index == 0 || int(index) > len(d.Shares) {
		return token.Partial{}, fmt.Errorf("tokentest: no share %d", index)
	}
	key := new(oprf.PrivateKey)
	if err := key.UnmarshalBinary(token.Suite, d.Shares[index-1]); err != nil {
		return token.Partial{}, err
	}
	elems, err := token.ParseElements(blinded)
	if err != nil {
		return token.Partial{}, err
	}
	ev, err := oprf.NewVerifiableServer(token.Suite, key).Evaluate(&oprf.EvaluationRequest{Elements: elems})
	if err != nil {
		return token.Partial{}, err
	}
	p := token.Partial{Index: index}
	for _, e := range ev.Elements {
		b, err := e.MarshalBinaryCompress()
		if err != nil {
			return token.Partial{}, err
		}
		p.Evaluated = append(p.Evaluated, b)
	}
	if p.Proof, err = ev.Proof.MarshalBinary(); err != nil {
		return token.Partial{}, err
	}
	return p, nil
}

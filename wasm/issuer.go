package wasm

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// Issuer is the evaluating half of the token protocol: it holds the
// federation's POPRF private key for an epoch and evaluates blinded inputs
// without learning them. It runs natively (circl) in the issuer node; the
// client half runs in the wasm module. Safe for concurrent use.
type Issuer struct {
	server oprf.PartialObliviousServer
	pub    []byte
}

// GenerateIssuerKey returns a fresh serialised issuer private key (32 bytes)
// drawn from crypto/rand. Keep it secret; never log it.
func GenerateIssuerKey() ([]byte, error) {
	k, err := oprf.GenerateKey(token.Suite, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wasm: generate issuer key: %w", err)
	}
	b, err := k.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("wasm: serialise issuer key: %w", err)
	}
	return b, nil
}

// NewIssuer loads a serialised private key (32 bytes, the canonical
// ristretto255 scalar encoding that [GenerateIssuerKey] returns and that the
// node stores). It returns [ErrIssuerKey] for anything else, including zero.
func NewIssuer(privateKey []byte) (*Issuer, error) {
	if len(privateKey) != token.ScalarSize {
		return nil, ErrIssuerKey
	}
	k := new(oprf.PrivateKey)
	if err := k.UnmarshalBinary(token.Suite, privateKey); err != nil {
		return nil, ErrIssuerKey
	}
	pub, err := k.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("wasm: serialise issuer public key: %w", err)
	}
	return &Issuer{server: oprf.NewPartialObliviousServer(token.Suite, k), pub: pub}, nil
}

// CheckPublicKey reports whether b is a usable issuer public key (a
// canonical, non-identity ristretto255 element), as a node should check a
// key received from configuration or from the federation.
func CheckPublicKey(b []byte) error {
	if _, err := token.ParsePublicKey(b); err != nil {
		return ErrPublicKey
	}
	return nil
}

// PublicKey returns the issuer's serialised public key (32 bytes), which
// clients need to verify evaluation proofs.
func (i *Issuer) PublicKey() []byte { return append([]byte(nil), i.pub...) }

// Evaluate evaluates a batch of blinded elements for a purpose and epoch and
// returns the evaluated elements with one batch DLEQ proof. It refuses an
// invalid purpose ([ErrInvalidPurpose]), an empty or oversized batch
// ([ErrBatchSize]) and malformed or identity elements ([ErrEncoding]).
// Authorising the caller for the purpose is the node's job, before this call.
func (i *Issuer) Evaluate(purpose string, epoch uint32, blinded [][]byte) (evaluated [][]byte, proof []byte, err error) {
	info, err := token.Info(purpose, epoch)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	if len(blinded) == 0 || len(blinded) > token.MaxBatch {
		return nil, nil, ErrBatchSize
	}
	elems, err := token.ParseElements(blinded)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	ev, err := i.server.Evaluate(&oprf.EvaluationRequest{Elements: elems}, info)
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

// FullEvaluate computes the token for one already-normalised input directly
// with the private key, without blinding. It is the native reference that
// tests compare client-side tokens against; the node must not use it for
// lookups on behalf of clients, which would defeat the blinding.
func (i *Issuer) FullEvaluate(input []byte, purpose string, epoch uint32) ([]byte, error) {
	info, err := token.Info(purpose, epoch)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := i.server.FullEvaluate(input, info)
	if err != nil {
		return nil, fmt.Errorf("wasm: full evaluate: %w", err)
	}
	return out, nil
}

// Evaluator returns an [Evaluator] that calls this issuer in-process.
func (i *Issuer) Evaluator() Evaluator { return localEvaluator{i} }

type localEvaluator struct{ i *Issuer }

func (l localEvaluator) Evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return l.i.Evaluate(purpose, epoch, blinded)
}

var _ Evaluator = localEvaluator{}

// Evaluator evaluates blinded elements; the node implements it by calling
// the issuer node over an authenticated connection, [Issuer.Evaluator] in
// process. It must return exactly one evaluated element per blinded element
// and one proof for the batch.
type Evaluator interface {
	Evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) (evaluated [][]byte, proof []byte, err error)
}

// DeriveKeys derives the lookup key (16 bytes) and the seal key (32 bytes)
// from a token with HKDF-SHA256 (empty salt, info "signpost/v1 lookup-key"
// and "signpost/v1 seal-key"). The wasm module computes the same; tests prove
// it.
func DeriveKeys(tok []byte) (lookup [16]byte, seal [32]byte) { return token.DeriveKeys(tok) }

package wasm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
)

// issuers is a ThresholdEvaluator over share issuers in this process; a
// node implements it by asking issuer nodes in parallel.
type issuers struct {
	ks     wasm.KeySet
	shares []*wasm.ShareIssuer
}

func (e issuers) KeySet(context.Context, string, uint32) (wasm.KeySet, error) { return e.ks, nil }

func (e issuers) EvaluatePartials(_ context.Context, _ string, _ uint32, blinded [][]byte) ([]wasm.Partial, error) {
	var out []wasm.Partial
	for _, s := range e.shares {
		p, err := s.Partial(blinded)
		if err != nil {
			return nil, err
		}
		// A node checks every answer with public data before it
		// forwards it, and asks another issuer instead of a bad one.
		if err := wasm.VerifyPartial(e.ks, blinded, p); err != nil {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func ExampleNativeClient_ThresholdTokens() {
	ctx := context.Background()
	// A 2-of-3 key for safeguarding, epoch 1. Only tests deal keys; real
	// shares come from the issuers' distributed key generation.
	d, err := tokentest.Deal(rand.Reader, 2, 3)
	if err != nil {
		panic(err)
	}
	ks := wasm.KeySet{Purpose: "safeguarding", Epoch: 1, T: 2, GroupKey: d.KeySet.GroupKey}
	var all []*wasm.ShareIssuer
	for i, share := range d.Shares {
		s, err := wasm.NewShareIssuer(uint16(i+1), share)
		if err != nil {
			panic(err)
		}
		all = append(all, s)
		ks.Shares = append(ks.Shares, wasm.PublicShare{Index: s.Index(), NodeID: fmt.Sprintf("issuer-%d", i+1), Key: s.PublicShare()})
	}
	if err := ks.Validate(); err != nil {
		panic(err)
	}

	client := wasm.NewNativeClient(nil)
	ab, err := client.ThresholdTokens(ctx, issuers{ks, all[:2]}, "nhs", []string{"999 000 0018"}, "safeguarding", 1)
	if err != nil {
		panic(err)
	}
	bc, err := client.ThresholdTokens(ctx, issuers{ks, all[1:]}, "nhs", []string{"9990000018"}, "safeguarding", 1)
	if err != nil {
		panic(err)
	}
	fmt.Println("issuers 1+2 and 2+3 agree:", bytes.Equal(ab[0].Token, bc[0].Token))

	_, err = client.ThresholdTokens(ctx, issuers{ks, all[:1]}, "nhs", []string{"9990000018"}, "safeguarding", 1)
	fmt.Println("one issuer:", errors.Is(err, wasm.ErrTooFewPartials))
	// Output:
	// issuers 1+2 and 2+3 agree: true
	// one issuer: true
}

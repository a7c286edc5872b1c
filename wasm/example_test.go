package wasm_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/wasm"
)

func ExampleRuntime_Validate() {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	for _, in := range []string{"999-000-0018", "999 000 0019", "999000001"} {
		r, err := rt.Validate(ctx, "nhs", in)
		if err != nil {
			panic(err)
		}
		if r.Valid {
			fmt.Println(r.Formatted, r.Range)
		} else {
			fmt.Println(r.Code, "-", r.Reason)
		}
	}
	// Output:
	// 999 000 0018 test
	// nhs.check_digit - the check digit does not match: this is not a valid number; check it against the record
	// nhs.length - 10 digits expected, got 9 (a leading zero may have been lost)
}

func ExampleRuntime_Tokens() {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	key, _ := wasm.GenerateIssuerKey()
	issuer, _ := wasm.NewIssuer(key)

	// The module validates and blinds, the issuer evaluates blind, the module
	// verifies the proof and unblinds. Presentation does not matter; purpose does.
	a, _ := rt.Tokens(ctx, issuer.Evaluator(), "nhs", []string{"999 000 0018"}, "safeguarding", 1)
	b, _ := rt.Tokens(ctx, issuer.Evaluator(), "nhs", []string{"9990000018"}, "safeguarding", 1)
	c, _ := rt.Tokens(ctx, issuer.Evaluator(), "nhs", []string{"9990000018"}, "direct-care", 1)
	fmt.Println(bytes.Equal(a[0].Token, b[0].Token), a[0].LookupKey == b[0].LookupKey)
	fmt.Println(bytes.Equal(a[0].Token, c[0].Token))
	// Output:
	// true true
	// false
}

func ExampleRuntime_OpenEntries() {
	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer rt.Close(ctx)

	key, _ := wasm.GenerateIssuerKey()
	issuer, _ := wasm.NewIssuer(key)
	toks, _ := rt.Tokens(ctx, issuer.Evaluator(), "nhs", []string{"999 000 0018"}, "safeguarding", 1)
	tok := toks[0]

	// A school's node publishes an entry under the token's keys (in real
	// life: on its own node; the reader gets the encoding from a lookup).
	pub, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	holder, _ := locator.NewHolder("node-school", nodeKey, [32]byte{1})
	e, _ := holder.Publish(tok.LookupKey, tok.SealKey, "education", 1, time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour))

	members := []wasm.Member{{NodeID: "node-school", PublicKey: pub}}
	opened, _ := rt.OpenEntries(ctx, tok.SealKey, [][]byte{e.Encode()}, members)
	fmt.Println(opened[0].NodeID, opened[0].Category, opened[0].RegisteredAt.Format(time.DateOnly), opened[0].Err)

	// Without the school among the members, the entry is not believed.
	opened, _ = rt.OpenEntries(ctx, tok.SealKey, [][]byte{e.Encode()}, nil)
	fmt.Println(errors.Is(opened[0].Err, wasm.ErrUnknownHolder))
	// Output:
	// node-school education 2025-09-01 <nil>
	// true
}

package wasm_test

import (
	"bytes"
	"context"
	"fmt"

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
	// nhs.check_digit - check digit should be 8, is 9
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

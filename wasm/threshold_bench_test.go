package wasm

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// BenchmarkShareIssuerEvaluate is an issuer's per-share batch evaluation
// through ShareIssuer versus circl's VOPRF server directly (parsing and
// serialising timed for both, as a real server does them), per token at
// batch 1 and 256. Goal: within 1.2× of circl.
func BenchmarkShareIssuerEvaluate(b *testing.B) {
	d, err := tokentest.Deal(mrand.NewChaCha8([32]byte{1}), 2, 3)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := NewShareIssuer(1, d.Shares[0])
	if err != nil {
		b.Fatal(err)
	}
	priv := new(oprf.PrivateKey)
	if err := priv.UnmarshalBinary(token.Suite, d.Shares[0]); err != nil {
		b.Fatal(err)
	}
	server := oprf.NewVerifiableServer(token.Suite, priv)
	for _, n := range []int{1, 256} {
		_, blinded, err := token.BlindVerifiable(rand.Reader, benchInputs(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("signpost/batch=%d", n), func(b *testing.B) {
			c0 := testutil.CPUTime()
			for b.Loop() {
				if _, _, err := iss.Evaluate(blinded); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*n), "cpu-ns/token")
		})
		b.Run(fmt.Sprintf("circl/batch=%d", n), func(b *testing.B) {
			c0 := testutil.CPUTime()
			for b.Loop() {
				elems, err := token.ParseElements(blinded)
				if err != nil {
					b.Fatal(err)
				}
				ev, err := server.Evaluate(&oprf.EvaluationRequest{Elements: elems})
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range ev.Elements {
					_, _ = e.MarshalBinaryCompress()
				}
				_, _ = ev.Proof.MarshalBinary()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*n), "cpu-ns/token")
		})
	}
}

// combineBench prepares, for t = n = th, a blinding of one number and the
// t partials, and returns a function that combines them with c.
func combineBench(b *testing.B, c interface {
	BlindThreshold(context.Context, string, []string) (*Blinding, error)
	Combine(context.Context, *Blinding, KeySet, []Partial) ([]Token, error)
}, th int) func() {
	ctx := context.Background()
	f := newThresholdFixture(b, mrand.NewChaCha8([32]byte{byte(th)}), th, th, "safeguarding", 1)
	bl, err := c.BlindThreshold(ctx, "nhs", GenerateTestNumbers(2, 1))
	if err != nil {
		b.Fatal(err)
	}
	var ps []Partial
	for _, iss := range f.issuers {
		p, err := iss.Partial(bl.Blinded)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
	}
	return func() {
		if _, err := c.Combine(ctx, bl, f.ks, ps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCombineNative is the threshold client's verify-and-combine per
// token (batch 1: key set check, t proofs, Lagrange combine, finalize,
// key derivation) with the native client, for t = 2, 3 and 5 (n = t).
func BenchmarkCombineNative(b *testing.B) {
	for _, th := range []int{2, 3, 5} {
		b.Run(fmt.Sprintf("t=%d", th), func(b *testing.B) {
			run := combineBench(b, NewNativeClient(nil), th)
			c0 := testutil.CPUTime()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N), "cpu-ns/token")
		})
	}
}

// BenchmarkCombineWazero is BenchmarkCombineNative through the module
// under wazero.
func BenchmarkCombineWazero(b *testing.B) {
	r := newTestRuntime(b, Config{Instances: 1})
	for _, th := range []int{2, 3, 5} {
		b.Run(fmt.Sprintf("t=%d", th), func(b *testing.B) {
			run := combineBench(b, r, th)
			run() // instantiate outside the timer
			c0 := testutil.CPUTime()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N), "cpu-ns/token")
		})
	}
}

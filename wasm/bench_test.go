package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"
	"github.com/tetratelabs/wazero"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// benchNumbers is a mix of valid and invalid synthetic inputs, the same for
// every validation benchmark.
func benchNumbers(n int) []string {
	valid := GenerateTestNumbers(1, n)
	for i := range valid {
		switch i % 4 {
		case 1:
			valid[i] = valid[i][:3] + " " + valid[i][3:6] + " " + valid[i][6:]
		case 3:
			valid[i] = valid[i][:9] + string('0'+(valid[i][9]-'0'+1)%10) // wrong check digit
		}
	}
	return valid
}

// BenchmarkValidateNative is the native Go validator, per number.
func BenchmarkValidateNative(b *testing.B) {
	nums := benchNumbers(4096)
	b.ReportAllocs()
	i := 0
	c0 := testutil.CPUTime()
	for b.Loop() {
		_ = (ident.NHS{}).Validate(nums[i%len(nums)])
		i++
	}
	b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N), "cpu-ns/number")
}

// BenchmarkValidateNativeBatch validates a batch natively into Results, per number.
func BenchmarkValidateNativeBatch(b *testing.B) {
	nums := benchNumbers(4096)
	out := make([]Result, len(nums))
	b.ReportAllocs()
	c0 := testutil.CPUTime()
	for b.Loop() {
		for i, n := range nums {
			r := (ident.NHS{}).Validate(n)
			out[i] = Result{r.Input, r.Valid, r.Scheme, r.System, r.Normalized, r.Formatted, string(r.Code), r.Reason, r.Range}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(nums)), "ns/number")
	b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*len(nums)), "cpu-ns/number")
}

// warmValidation makes the first validation call, which compiles the
// validation pool, outside the timed loop.
func warmValidation(b *testing.B, r *Runtime) {
	b.Helper()
	if _, err := r.Validate(context.Background(), "nhs", "9990000018"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkValidateWazeroSingle is one module call per number.
func BenchmarkValidateWazeroSingle(b *testing.B) {
	r := newTestRuntime(b, Config{Instances: 1})
	nums := benchNumbers(4096)
	ctx := context.Background()
	warmValidation(b, r)
	b.ReportAllocs()
	i := 0
	c0 := testutil.CPUTime()
	for b.Loop() {
		if _, err := r.Validate(ctx, "nhs", nums[i%len(nums)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N), "cpu-ns/number")
}

// BenchmarkValidateWazeroBatch is one module call per 4096 numbers; the
// ns/number metric is comparable with BenchmarkValidateNativeBatch.
func BenchmarkValidateWazeroBatch(b *testing.B) {
	r := newTestRuntime(b, Config{Instances: 1})
	nums := benchNumbers(4096)
	ctx := context.Background()
	warmValidation(b, r)
	b.ReportAllocs()
	c0 := testutil.CPUTime()
	for b.Loop() {
		if _, err := r.ValidateBatch(ctx, "nhs", nums); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(nums)), "ns/number")
	b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*len(nums)), "cpu-ns/number")
}

func benchInputs(n int) [][]byte {
	nums := GenerateTestNumbers(2, n)
	in := make([][]byte, n)
	for i, s := range nums {
		in[i] = ident.TokenInput(ident.NHS{}, s)
	}
	return in
}

// BenchmarkClientNative is blind + finalize per token with the native client
// (the issuer's evaluation is done outside the timer).
func BenchmarkClientNative(b *testing.B) {
	iss := newTestIssuer(b)
	inputs := benchInputs(1)
	info, _ := token.Info("safeguarding", 1)
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		c := testutil.CPUTime()
		blinds, blinded, err := token.Blind(rand.Reader, inputs)
		if err != nil {
			b.Fatal(err)
		}
		cpu += testutil.CPUTime() - c
		b.StopTimer()
		ev, proof, err := iss.Evaluate("safeguarding", 1, blinded)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c = testutil.CPUTime()
		if _, err := token.Finalize(iss.PublicKey(), info, inputs, blinds, ev, proof); err != nil {
			b.Fatal(err)
		}
		cpu += testutil.CPUTime() - c
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/token")
}

// BenchmarkClientWazero is blind + finalize per token through the module.
func BenchmarkClientWazero(b *testing.B) {
	r := newTestRuntime(b, Config{Instances: 1})
	iss := newTestIssuer(b)
	nums := GenerateTestNumbers(2, 1)
	ctx := context.Background()
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		c := testutil.CPUTime()
		bl, err := r.Blind(ctx, "nhs", nums)
		if err != nil {
			b.Fatal(err)
		}
		cpu += testutil.CPUTime() - c
		b.StopTimer()
		ev, proof, err := iss.Evaluate("safeguarding", 1, bl.Blinded)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c = testutil.CPUTime()
		if _, err := r.Finalize(ctx, bl, iss.PublicKey(), "safeguarding", 1, ev, proof); err != nil {
			b.Fatal(err)
		}
		cpu += testutil.CPUTime() - c
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/token")
}

// BenchmarkIssuerEvaluate is the issuer's batched evaluation through this
// package versus circl directly, per token.
func BenchmarkIssuerEvaluate(b *testing.B) {
	key, _ := GenerateIssuerKey()
	iss, _ := NewIssuer(key)
	priv := new(oprf.PrivateKey)
	if err := priv.UnmarshalBinary(token.Suite, key); err != nil {
		b.Fatal(err)
	}
	server := oprf.NewPartialObliviousServer(token.Suite, priv)
	info, _ := token.Info("safeguarding", 1)
	for _, n := range []int{1, 16, 256} {
		_, blinded, err := token.Blind(rand.Reader, benchInputs(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("signpost/batch=%d", n), func(b *testing.B) {
			c0 := testutil.CPUTime()
			for b.Loop() {
				if _, _, err := iss.Evaluate("safeguarding", 1, blinded); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*n), "cpu-ns/token")
		})
		b.Run(fmt.Sprintf("circl/batch=%d", n), func(b *testing.B) {
			c0 := testutil.CPUTime()
			for b.Loop() {
				// circl needs parsed elements; parsing is part of a real
				// server's work, so it is timed here as well.
				elems, err := token.ParseElements(blinded)
				if err != nil {
					b.Fatal(err)
				}
				ev, err := server.Evaluate(&oprf.EvaluationRequest{Elements: elems}, info)
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

// BenchmarkCompile is the module's compilation: cold (fresh cache) and from
// a warm on-disk compilation cache.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	mod := Module()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(wazero.NewCompilationCache()))
			if _, err := rt.CompileModule(ctx, mod); err != nil {
				b.Fatal(err)
			}
			_ = rt.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := New(ctx, Config{Instances: 1, CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		_ = warm.Close(ctx)
		for b.Loop() {
			r, err := New(ctx, Config{Instances: 1, CacheDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			_ = r.Close(ctx)
		}
	})
}

// BenchmarkIdentValidateCLI is `signpost ident validate` in process, with
// a warm compilation cache (a directory of the benchmark's own), from
// flag parsing to the last output byte: each one-number op loads the
// compiled module from disk as a new process would; each stdin op pipes
// a million benchNumbers lines. docs/BENCHMARKS.md ("Edge CLI") has the
// same figures for the built binary, process start included.
func BenchmarkIdentValidateCLI(b *testing.B) {
	cache := b.TempDir()
	run := func(b *testing.B, stdin []byte, args ...string) {
		args = append([]string{"validate", "--" + CacheFlag, cache}, args...)
		var errb bytes.Buffer
		if code := IdentMain(context.Background(), args, bytes.NewReader(stdin), io.Discard, &errb); code > 1 || errb.Len() > 0 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
	}
	run(b, nil, "9990000018") // compile into the cache
	b.Run("one-number", func(b *testing.B) {
		for b.Loop() {
			run(b, nil, "9990000018")
		}
	})
	const n = 1_000_000
	stdin := []byte(strings.Join(benchNumbers(n), "\n") + "\n")
	for _, mode := range []string{"plain", "json"} {
		b.Run("stdin-1e6-"+mode, func(b *testing.B) {
			args := []string{}
			if mode == "json" {
				args = append(args, "--json")
			}
			c0 := testutil.CPUTime()
			for b.Loop() {
				run(b, stdin, args...)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/number")
			b.ReportMetric(float64(testutil.CPUTime()-c0)/float64(b.N*n), "cpu-ns/number")
		})
	}
}

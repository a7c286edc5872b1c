package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/stack"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/purpose"
)

// TestPurposeConformance checks that every component that takes a purpose
// name accepts and refuses exactly the same names: the rule of package
// purpose, applied by the WebAssembly module (what browsers and the node's
// tokenizer run), the native token code (the issuer and the wasm host), the
// federation authority's descriptor validation (enrolment), the node's
// configuration, a DKG session's config and the authority's key records.
// A name one of them accepts and another refuses (as "care2" once was:
// enrolled and configured, never tokenised) fails the test.
func TestPurposeConformance(t *testing.T) {
	names := []struct {
		name string
		ok   bool
	}{
		{"safeguarding", true},
		{"direct-care", true},
		{"a", true},
		{"a-b-c-d", true},
		{strings.Repeat("x", purpose.MaxLen), true},
		{strings.Repeat("ab-", 13) + "a", true}, // 40 bytes
		{"care2", false},
		{"2care", false},
		{"Safeguarding", false},
		{"SAFEGUARDING", false},
		{"direct--care", false},
		{"-care", false},
		{"care-", false},
		{"-", false},
		{strings.Repeat("x", purpose.MaxLen+1), false},
		{strings.Repeat("x", 64), false}, // the token rule's old limit
		{"", false},
		{"direct care", false},
		{"direct_care", false},
		{"direct.care", false},
		{"dïrect-care", false},
		{"ｃａｒｅ", false}, // full-width letters
		{"care\x00", false},
		{"care\n", false},
		{"a|b", false}, // the POPRF info separator
	}

	ctx := context.Background()
	rt, err := wasm.New(ctx, wasm.Config{Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	key, err := wasm.GenerateIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := wasm.NewIssuer(key)
	if err != nil {
		t.Fatal(err)
	}
	numbers := wasm.GenerateTestNumbers(9, 2)
	blinding, err := rt.Blind(ctx, "nhs", numbers)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dkgConfig := func(p string) dkg.Config {
		return dkg.Config{Purpose: p, Epoch: 1, T: 1, Participants: []dkg.Participant{{NodeID: "node-1", Index: 1}},
			Start: now, PhaseTimeout: time.Minute}
	}
	// A 1-of-1 key, made at once, for key records under any purpose.
	sess, _, err := dkg.New(dkgConfig("safeguarding"), "node-1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyResult, err := sess.Result()
	if err != nil {
		t.Fatal(err)
	}
	authority, err := federation.GenerateAuthority()
	if err != nil {
		t.Fatal(err)
	}

	components := []struct {
		name string
		// accepts reports whether the component accepts p as a purpose.
		accepts func(t *testing.T, p string) bool
	}{
		{"purpose.Validate", func(t *testing.T, p string) bool {
			return purpose.Validate(p) == nil
		}},
		{"wasm module (Runtime.Finalize)", func(t *testing.T, p string) bool {
			// Evaluate under p where the issuer allows it, else under a
			// valid purpose: a module that accepted p would then answer
			// ErrProofInvalid, not ErrInvalidPurpose.
			ev, proof, err := iss.Evaluate(p, 1, blinding.Blinded)
			if err != nil {
				if ev, proof, err = iss.Evaluate("safeguarding", 1, blinding.Blinded); err != nil {
					t.Fatal(err)
				}
			}
			toks, err := rt.Finalize(ctx, blinding, iss.PublicKey(), p, 1, ev, proof)
			switch {
			case err == nil:
				if len(toks) != len(numbers) {
					t.Fatalf("%d tokens for %d numbers", len(toks), len(numbers))
				}
				return true
			case errors.Is(err, wasm.ErrProofInvalid):
				return true
			case errors.Is(err, wasm.ErrInvalidPurpose):
				// The module, not a check in the host, must have refused.
				if !strings.Contains(err.Error(), "module status") {
					t.Fatalf("refused outside the module: %v", err)
				}
				return false
			}
			t.Fatalf("finalize: %v", err)
			return false
		}},
		{"native issuer (Issuer.Evaluate)", func(t *testing.T, p string) bool {
			_, _, err := iss.Evaluate(p, 1, blinding.Blinded)
			if err != nil && !errors.Is(err, wasm.ErrInvalidPurpose) {
				t.Fatalf("evaluate: %v", err)
			}
			return err == nil
		}},
		{"wasm host (Runtime.Tokens)", func(t *testing.T, p string) bool {
			toks, err := rt.Tokens(ctx, iss.Evaluator(), "nhs", numbers, p, 1)
			if err != nil && !errors.Is(err, wasm.ErrInvalidPurpose) {
				t.Fatalf("tokens: %v", err)
			}
			if err == nil && len(toks) != len(numbers) {
				t.Fatalf("%d tokens for %d numbers", len(toks), len(numbers))
			}
			return err == nil
		}},
		{"federation descriptor (Descriptor.Validate)", func(t *testing.T, p string) bool {
			d := federation.Descriptor{
				NodeID: "node-1", Agency: "Borsetshire Children's Services", Category: "social-care",
				Purposes: []string{p}, PublicKey: pub,
				NotBefore: now, Expires: now.Add(time.Hour), Serial: 1,
			}
			return d.Validate() == nil
		}},
		{"DKG session config (dkg.Config.Validate)", func(t *testing.T, p string) bool {
			err := dkgConfig(p).Validate()
			if err != nil && !strings.Contains(err.Error(), "purpose") {
				t.Fatalf("a DKG config valid but for its purpose refused: %v", err)
			}
			return err == nil
		}},
		{"key record (Authority.SignKeyRecord)", func(t *testing.T, p string) bool {
			r := federation.KeyRecordFromKeySet(&keyResult.KeySet)
			r.Purpose, r.Serial, r.NotBefore = p, 1, now
			_, err := authority.SignKeyRecord(r)
			if err != nil && !strings.Contains(err.Error(), "purpose") {
				t.Fatalf("a key record valid but for its purpose refused: %v", err)
			}
			return err == nil
		}},
		{"node config (stack.ValidateConfig, what signpost node and StartStack check)", func(t *testing.T, p string) bool {
			cfg := node.DefaultConfig()
			cfg.NodeID, cfg.Category, cfg.DataDir = "node-1", "social-care", t.TempDir()
			cfg.Purposes = []string{p}
			err := stack.ValidateConfig(cfg)
			if err != nil && !errors.Is(err, purpose.ErrInvalid) {
				t.Fatalf("a config valid but for its purpose refused: %v", err)
			}
			return err == nil
		}},
	}

	for _, n := range names {
		t.Run(n.name, func(t *testing.T) {
			for _, c := range components {
				if got := c.accepts(t, n.name); got != n.ok {
					t.Errorf("%s: accepts %q = %v, want %v", c.name, n.name, got, n.ok)
				}
			}
		})
	}
}

package token

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

func TestValidatePurpose(t *testing.T) {
	for _, p := range []string{"safeguarding", "direct-care", "a", "a-b-c"} {
		if err := ValidatePurpose(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	for _, p := range []string{"", "-a", "a-", "a--b", "A", "direct care", "dïrect", "a|b", "a1", string(bytes.Repeat([]byte("a"), 41))} {
		if err := ValidatePurpose(p); !errors.Is(err, ErrInvalidPurpose) || !errors.Is(err, purpose.ErrInvalid) {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestParseEpoch(t *testing.T) {
	for s, want := range map[string]uint32{"0": 0, "7": 7, "4294967295": 4294967295} {
		if got, err := ParseEpoch(s); err != nil || got != want {
			t.Errorf("%q: %d %v", s, got, err)
		}
	}
	for _, s := range []string{"", "01", "-1", "+1", " 1", "4294967296", "1e3", "99999999999"} {
		if _, err := ParseEpoch(s); !errors.Is(err, ErrInvalidEpoch) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestInfo(t *testing.T) {
	info, err := Info("direct-care", 42)
	if err != nil || string(info) != "signpost/v1|direct-care|42" {
		t.Fatalf("%q %v", info, err)
	}
}

func TestRoundTripAgainstCircl(t *testing.T) {
	key, err := oprf.GenerateKey(Suite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	server := oprf.NewPartialObliviousServer(Suite, key)
	pub, _ := key.Public().MarshalBinary()
	inputs := [][]byte{[]byte("https://fhir.nhs.uk/Id/nhs-number|9990000018"), []byte("x")}
	info, _ := Info("safeguarding", 1)
	blinds, blinded, err := Blind(rand.Reader, inputs)
	if err != nil {
		t.Fatal(err)
	}
	elems, err := ParseElements(blinded)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := server.Evaluate(&oprf.EvaluationRequest{Elements: elems}, info)
	if err != nil {
		t.Fatal(err)
	}
	evaluated := make([][]byte, len(ev.Elements))
	for i, e := range ev.Elements {
		evaluated[i], _ = e.MarshalBinaryCompress()
	}
	proof, _ := ev.Proof.MarshalBinary()
	toks, err := Finalize(pub, info, inputs, blinds, evaluated, proof)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		want, _ := server.FullEvaluate(in, info)
		if !bytes.Equal(toks[i], want) {
			t.Errorf("input %d: token differs from full evaluation", i)
		}
	}
}

func TestDeriveKeysLabels(t *testing.T) {
	l1, s1 := DeriveKeys([]byte("a"))
	l2, s2 := DeriveKeys([]byte("b"))
	if l1 == l2 || s1 == s2 || bytes.Equal(l1[:], s1[:16]) {
		t.Fatal("keys not separated")
	}
}

// FuzzFinalizeDecoders feeds arbitrary bytes to every decoder of Finalize:
// it must refuse them with an error, never panic.
func FuzzFinalizeDecoders(f *testing.F) {
	g := Suite.Group()
	gen, _ := g.Generator().MarshalBinaryCompress()
	f.Add(gen, gen, make([]byte, 32), make([]byte, 64))
	f.Add([]byte{}, []byte{1}, []byte{2}, []byte{3})
	info, _ := Info("safeguarding", 1)
	f.Fuzz(func(t *testing.T, pub, blind, evaluated, proof []byte) {
		_, err := Finalize(pub, info, [][]byte{[]byte("in")}, [][]byte{blind}, [][]byte{evaluated}, proof)
		if err == nil {
			t.Fatal("random bytes finalized")
		}
		_, _ = ParsePublicKey(pub)
		_, _ = ParseElements([][]byte{evaluated, blind})
	})
}

func FuzzPurposeAndEpoch(f *testing.F) {
	f.Add("safeguarding", "1")
	f.Add("direct-care", "4294967295")
	f.Add("a--b", "01")
	f.Fuzz(func(t *testing.T, purpose, epoch string) {
		if err := ValidatePurpose(purpose); err == nil {
			info, err := Info(purpose, 1)
			if err != nil || !bytes.HasPrefix(info, []byte(InfoPrefix+purpose+"|")) {
				t.Fatal("valid purpose, bad info")
			}
			for i := 0; i < len(purpose); i++ {
				if c := purpose[i]; c != '-' && (c < 'a' || c > 'z') {
					t.Fatalf("accepted byte %q", c)
				}
			}
		}
		if v, err := ParseEpoch(epoch); err == nil {
			if s, _ := Info("a", v); string(s) != "signpost/v1|a|"+epoch {
				t.Fatalf("epoch %q does not round-trip", epoch)
			}
		}
	})
}

type fixedReader byte

func (f fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// TestBlindUsesTheGivenReader: blinds come from the reader the caller
// passes (circl's RandomScalar would silently ignore it).
func TestBlindUsesTheGivenReader(t *testing.T) {
	in := [][]byte{[]byte("x")}
	a, _, err := Blind(fixedReader(7), in)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := Blind(fixedReader(7), in)
	c, _, _ := Blind(fixedReader(8), in)
	if !bytes.Equal(a[0], b[0]) || bytes.Equal(a[0], c[0]) {
		t.Fatal("blind does not depend on the reader alone")
	}
	if _, _, err := Blind(bytes.NewReader(nil), in); err == nil {
		t.Fatal("an empty reader gave a blind")
	}
	r1, _, _ := Blind(rand.Reader, in)
	r2, _, _ := Blind(rand.Reader, in)
	if bytes.Equal(r1[0], r2[0]) {
		t.Fatal("two random blinds are equal")
	}
}

func TestBlindRefusesZeroSource(t *testing.T) {
	if _, _, err := Blind(fixedReader(0), [][]byte{[]byte("x")}); err == nil {
		t.Fatal("an all-zero source gave a blind")
	}
}

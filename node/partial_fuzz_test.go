package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// FuzzPeerPartial feeds arbitrary issuer answers (as the peer transport
// decodes them) through the node's checks and the native proof
// verification: nothing panics, what is accepted has the batch's shape, and
// nothing but the real issuer's answer verifies.
func FuzzPeerPartial(f *testing.F) {
	d, err := wasmtest.Deal(bytes.NewReader(bytes.Repeat([]byte{7}, 4096)), "safeguarding", 1, 2, "a", "b", "c")
	if err != nil {
		f.Fatal(err)
	}
	kr := adapter.NewKeyring("a")
	ks := adapter.PortKeySet(d.KeySet)
	if err := kr.SetKeys([]KeySet{ks}); err != nil {
		f.Fatal(err)
	}
	bl := newBenchBlinded(f, 2)
	good, err := d.Issuers[1].Partial(bl)
	if err != nil {
		f.Fatal(err)
	}
	ans := peerEvaluateResponse{Epoch: 1, Index: good.Index, Evaluated: encodeAll(good.Evaluated), Proof: encodeAll([][]byte{good.Proof})[0]}
	seed, _ := json.Marshal(ans)
	f.Add(seed)
	f.Add([]byte(`{"epoch":1,"index":2,"evaluated":["AAEC","AAED"],"proof":"AAEC"}`))
	f.Add([]byte(`{"epoch":1,"index":2,"evaluated":[],"proof":""}`))
	f.Add([]byte(`{"epoch":2,"index":1}`))
	iss, _ := ks.Issuer(2)
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp peerEvaluateResponse
		if json.Unmarshal(body, &resp) != nil {
			return
		}
		p, err := decodePartial(resp, iss, 1, len(bl))
		if err != nil {
			if !errors.Is(err, ErrIssuerUnavailable) {
				t.Fatalf("a malformed answer is not counted as unavailable: %v", err)
			}
			return
		}
		if p.Index != 2 || len(p.Evaluated) != len(bl) || len(p.Proof) > 2*MaxElementBytes {
			t.Fatalf("accepted a partial of the wrong shape: %+v", p)
		}
		verr := kr.VerifyPartial(ks, bl, p)
		real := bytes.Equal(p.Proof, good.Proof) && bytes.Equal(p.Evaluated[0], good.Evaluated[0]) && bytes.Equal(p.Evaluated[1], good.Evaluated[1])
		if (verr == nil) != real {
			t.Fatalf("verification %v for an answer that is the issuer's own: %v", verr, real)
		}
	})
}

// newBenchBlinded blinds n synthetic numbers with the module's native
// twin, for tests that need real blinded elements.
func newBenchBlinded(tb testing.TB, n int) [][]byte {
	tb.Helper()
	b, err := wasm.NewNativeClient(nil).BlindThreshold(context.Background(), "nhs", syntheticNumbers(n))
	if err != nil {
		tb.Fatal(err)
	}
	return b.Blinded
}

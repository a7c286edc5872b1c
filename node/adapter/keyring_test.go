package adapter_test

import (
	"math/rand/v2"
	"testing"

	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/port"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// TestKeyringShareMatchesKeyRecord: the keyring gives this node's share only
// while the key set names this node with that share's public key. The
// node relies on it: it does not check the proofs of its own evaluations.
func TestKeyringShareMatchesKeyRecord(t *testing.T) {
	d, err := wasmtest.Deal(rand.NewChaCha8([32]byte{7}), "safeguarding", 1, 2, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	// Another key's share under the same index: right index, wrong key.
	other, err := wasmtest.Deal(rand.NewChaCha8([32]byte{8}), "safeguarding", 1, 2, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		self  string
		share *wasm.ShareIssuer
		want  bool
	}{
		{"its own share", "a", d.Issuers[0], true},
		{"another issuer's share", "a", d.Issuers[1], false},
		{"another key's share, same index", "a", other.Issuers[0], false},
		{"a node the key set does not name", "z", d.Issuers[0], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := adapter.NewKeyring(tc.self)
			if err := k.SetKeys([]port.KeySet{adapter.PortKeySet(d.KeySet)}); err != nil {
				t.Fatal(err)
			}
			k.AddShare("safeguarding", 1, tc.share)
			if got := k.Share("safeguarding", 1) != nil; got != tc.want {
				t.Fatalf("share given: %v, want %v", got, tc.want)
			}
		})
	}
}

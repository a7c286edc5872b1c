// Package wasmtest gives tests outside package wasm a trusted dealer of
// threshold token keys: a key k Shamir-shared among n issuers, as
// [wasm.ShareIssuer]s with the public [wasm.KeySet]. Production keys are
// never dealt — no machine ever holds k; the issuers make their shares with
// the distributed key generation (federation/dkg) — so only _test.go files
// import this package.
package wasmtest

import (
	"fmt"
	"io"

	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
)

// Dealt is a dealt key: what every node is given (KeySet), what each
// issuer holds (Issuers, and their raw Shares), and the key itself (Key),
// which tests may only use to prove that nothing else ever holds it — leak
// scanners, reconstruction checks.
type Dealt struct {
	KeySet  wasm.KeySet
	Issuers []*wasm.ShareIssuer
	Shares  [][]byte
	Key     []byte
}

// Deal draws a key from rnd (the same reader gives the same key, so a
// seeded test replays) and shares it t-of-n among nodeIDs, whose Shamir
// indices are 1..n in order.
func Deal(rnd io.Reader, purpose string, epoch uint32, t int, nodeIDs ...string) (Dealt, error) {
	d, err := tokentest.Deal(rnd, t, len(nodeIDs))
	if err != nil {
		return Dealt{}, err
	}
	out := Dealt{KeySet: wasm.KeySet{Purpose: purpose, Epoch: epoch, T: t, GroupKey: d.KeySet.GroupKey}, Shares: d.Shares, Key: d.Key}
	for i, id := range nodeIDs {
		s, err := wasm.NewShareIssuer(uint16(i+1), d.Shares[i])
		if err != nil {
			return Dealt{}, fmt.Errorf("wasmtest: share %d: %w", i+1, err)
		}
		out.Issuers = append(out.Issuers, s)
		out.KeySet.Shares = append(out.KeySet.Shares, wasm.PublicShare{Index: uint16(i + 1), NodeID: id, Key: s.PublicShare()})
	}
	if err := out.KeySet.Validate(); err != nil {
		return Dealt{}, fmt.Errorf("wasmtest: dealt key set: %w", err)
	}
	return out, nil
}

package locator_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/signpost-federation/signpost/locator"
)

type members map[string]ed25519.PublicKey

func (m members) NodeKey(id string) (ed25519.PublicKey, bool) { k, ok := m[id]; return k, ok }

func ExampleHolder_Publish() {
	var seed, secret [32]byte
	secret[0] = 1 // in practice: random, kept on the node
	nodeKey := ed25519.NewKeyFromSeed(seed[:])
	h, _ := locator.NewHolder("school-17", nodeKey, secret)

	var lookup locator.LookupKey // both derived from the token in practice
	var seal locator.SealKey
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e, _ := h.Publish(lookup, seal, "education", 1, now, now.AddDate(1, 0, 0))

	s, _ := locator.NewMemStore(locator.DefaultPolicy())
	defer s.Close()
	o, _ := s.Apply(now, e)
	got, _ := s.Lookup(now, lookup)
	holding, _ := got[0].Open(seal, members{"school-17": nodeKey.Public().(ed25519.PublicKey)})
	fmt.Println(o.Result, holding.NodeID, holding.Category)
	// Output: accepted school-17 education
}

package protocol_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/federation/protocol/protocoltest"
	"github.com/signpost-federation/signpost/locator"
)

// Three nodes on protocoltest's virtual network: an entry published at one
// reaches the others by push, and everything they hold is the same.
func Example() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	net := protocoltest.New(1, start)
	for _, id := range []protocol.PeerID{"a", "b", "c"} {
		store, _ := locator.NewMemStore(locator.Policy{DigestDepth: 2})
		if _, err := net.Add(id, store, protocol.DefaultConfig()); err != nil {
			fmt.Println(err)
			return
		}
	}

	var seed, secret [32]byte
	secret[0] = 1
	holder, _ := locator.NewHolder("agency-a", ed25519.NewKeyFromSeed(seed[:]), secret)
	var lookup locator.LookupKey
	var seal locator.SealKey
	e, _ := holder.Publish(lookup, seal, "school", 1, start, start.AddDate(1, 0, 0))

	a := net.Nodes()[0]
	o, _ := a.Engine.Publish(net.Now, e)
	net.RunFor(time.Second)
	for _, n := range net.Nodes() {
		_, ok, _ := n.Store.Get(e.ID())
		fmt.Println(n.ID, ok)
	}
	fmt.Println(o.Result)
	// Output:
	// a true
	// b true
	// c true
	// accepted
}

package sealed_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

func Example() {
	var key [32]byte    // the seal key, derived from the token
	var lookup [16]byte // the lookup key, from the same token
	var entryPub [32]byte
	entryPub[0] = 1
	pub, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	id := sealed.Identity{NodeID: "school-7", Category: "education", RegisteredAt: 1767225600}

	s, err := sealed.Seal(rand.Reader, key, lookup, entryPub, nodeKey, id)
	if err != nil {
		panic(err)
	}
	members := func(nodeID string) (ed25519.PublicKey, bool) { return pub, nodeID == "school-7" }
	got, _, err := sealed.OpenVerify(key, lookup, entryPub, s, members)
	fmt.Println(got.NodeID, got.Category, err)

	key[0] = 1 // a different token's seal key
	_, _, err = sealed.OpenVerify(key, lookup, entryPub, s, members)
	fmt.Println(err)
	// Output:
	// school-7 education <nil>
	// sealed: sealed part does not open
}

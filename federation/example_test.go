package federation_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/signpost-federation/signpost/federation"
)

// An authority enrols a node; the node's descriptor verifies until the
// authority revokes it.
func ExampleAuthority_Enrol() {
	auth, _ := federation.GenerateAuthority()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	sd, err := auth.Enrol(federation.Descriptor{
		NodeID: "borsetshire-csc", Agency: "Borsetshire Children's Services", Category: "social-care",
		Purposes: []string{"safeguarding"}, PublicKey: pub,
		NotBefore: now.Add(-time.Minute), Expires: now.Add(365 * 24 * time.Hour), Serial: 1,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(sd.Verify(auth.PublicKey(), now, nil))
	rl, _ := auth.SignRevocations(2, now, []federation.Revocation{{NodeID: "borsetshire-csc"}})
	fmt.Println(errors.Is(sd.Verify(auth.PublicKey(), now, rl), federation.ErrDescriptorRevoked))
	// Output:
	// <nil>
	// true
}

// Two nodes of one federation on loopback: the second joins the first,
// and an entry published on one would spread to the other.
func ExampleNewAgent() {
	auth, _ := federation.GenerateAuthority()
	gossipKey := make([]byte, federation.GossipKeySize)
	rand.Read(gossipKey)
	start := func(id string) *federation.Agent {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		now := time.Now()
		sd, _ := auth.Enrol(federation.Descriptor{
			NodeID: id, Agency: "Agency " + id, Category: "social-care", PublicKey: pub,
			NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour), Serial: 1,
		})
		cfg := federation.DefaultConfig()
		cfg.GossipBindAddr, cfg.PeerBindAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.AuthorityKey = auth.PublicKey()
		cfg.Credentials = &federation.Credentials{Descriptor: sd, PrivateKey: priv}
		cfg.GossipKeys = [][]byte{gossipKey}
		cfg.Logger = slog.New(slog.DiscardHandler)
		a, err := federation.NewAgent(cfg)
		if err != nil {
			panic(err)
		}
		if err := a.Start(context.Background()); err != nil {
			panic(err)
		}
		return a
	}
	a, b := start("node-a"), start("node-b")
	defer a.Shutdown(context.Background())
	defer b.Leave(context.Background())
	if _, err := b.Join([]string{a.GossipAddr()}); err != nil {
		panic(err)
	}
	for _, m := range b.Members() {
		fmt.Println(m.NodeID, m.Agency, m.Alive)
	}
	// Output:
	// node-a Agency node-a true
}

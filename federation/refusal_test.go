package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// injectEntry POSTs a batch holding e to target's peer API, presenting
// cert as client certificate (nil: none) and trusting any server, so that
// only the target's checks decide. It returns the HTTP status, or the
// error of a refused handshake.
func injectEntry(target *Agent, cert *tls.Certificate, e *locator.Entry) (int, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	msg := (&protocol.Message{Kind: protocol.KindEntries, Entries: [][]byte{e.Encode()}}).Encode()
	resp, err := c.Post("https://"+target.PeerAddr()+PeerMessagesPath, "application/octet-stream",
		bytes.NewReader(appendFrame(nil, msg)))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// memberlistNames is what memberlist itself has admitted.
func memberlistNames(a *Agent) []string {
	var names []string
	for _, n := range a.ml.Members() {
		names = append(names, n.Name)
	}
	return names
}

// TestJoinRefused: nodes with no valid descriptor — none at all, another
// authority's, a forged one carrying our label and gossip key, an expired
// one, a revoked one, or one whose memberlist name is not its descriptor's
// id — are never admitted by memberlist or the agent, and their peer API
// calls are refused at the TLS handshake, so they cannot inject entries.
func TestJoinRefused(t *testing.T) {
	f := newTestFed(t)
	now := time.Now()
	revokedCreds := f.creds(t, "rogue-revoked")
	rl, err := f.auth.SignRevocations(2, now, []Revocation{{NodeID: "rogue-revoked"}})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan MemberEvent, 1024)
	honest := make([]*Agent, 5)
	for i := range honest {
		cfg := f.config(f.creds(t, fmt.Sprintf("node-%d", i)), "")
		cfg.Revocations = rl
		if i == 0 {
			cfg.Events = events
		}
		honest[i] = startAgent(t, cfg)
		if i > 0 {
			if _, err := honest[i].Join([]string{honest[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, honest...)

	other := newTestFed(t)
	other.gossipKey = f.gossipKey // same gossip key: only the authority differs
	expiredCreds := f.credsValid(t, "rogue-expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	forgedCreds := other.creds(t, "rogue-forged")
	tests := []struct {
		name string
		// cfg builds the rogue's config; prepare tampers with it before Start.
		cfg       func() Config
		prepare   func(*Agent)
		joinFails bool  // the join itself fails (label mismatch)
		want      error // refusal reason reported by the honest nodes
		// peerAllowed: the rogue holds a valid descriptor (only its
		// memberlist name lies), so the peer API, which authenticates
		// keys, accepts its calls.
		peerAllowed bool
	}{
		{
			name: "other authority", joinFails: true,
			cfg: func() Config { return other.config(other.creds(t, "rogue-other"), "") },
		},
		{
			name: "forged descriptor with our label and key", want: ErrDescriptorForged,
			cfg: func() Config { return f.config(f.creds(t, "rogue-forged"), "") },
			prepare: func(a *Agent) {
				// Present another authority's descriptor and certificate.
				a.self = forgedCreds.Descriptor
				cert, err := selfCertificate(forgedCreds)
				if err != nil {
					t.Fatal(err)
				}
				a.cert = cert
			},
		},
		{
			name: "expired", want: ErrDescriptorExpired,
			cfg: func() Config {
				c := f.config(expiredCreds, "")
				c.Now = func() time.Time { return time.Now().Add(-36 * time.Hour) } // believes itself valid
				return c
			},
		},
		{
			name: "revoked", want: ErrDescriptorRevoked,
			cfg: func() Config { return f.config(revokedCreds, "") }, // has not seen the list
		},
		{
			name: "name is not the descriptor id", want: ErrDescriptorForged, peerAllowed: true,
			cfg:     func() Config { return f.config(f.creds(t, "rogue-named"), "") },
			prepare: func(a *Agent) { a.nameOverride = "node-9" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prepare []func(*Agent)
			if tc.prepare != nil {
				prepare = append(prepare, tc.prepare)
			}
			rogue := startAgent(t, tc.cfg(), prepare...)
			defer rogue.Shutdown(context.Background())
			name := rogue.ml.LocalNode().Name
			_, joinErr := rogue.Join([]string{honest[0].GossipAddr()})
			if tc.joinFails {
				if joinErr == nil {
					t.Fatal("join succeeded")
				}
			} else {
				// The rogue may learn the honest nodes (their state is
				// sent before ours is judged) and gossip itself to them:
				// wait until honest node-0 has refused it explicitly.
				testutil.Eventually(t, convergeTimeout, func() error {
					for {
						select {
						case ev := <-events:
							if ev.Type == MemberRefused && ev.Member.NodeID == name {
								if !errors.Is(ev.Err, tc.want) {
									t.Fatalf("refused with %v, want %v", ev.Err, tc.want)
								}
								return nil
							}
						default:
							return errors.New("no refusal event yet")
						}
					}
				})
			}
			for _, h := range honest {
				if slices.Contains(memberlistNames(h), name) {
					t.Fatalf("%s: memberlist admitted %s", h.Self().NodeID, name)
				}
				for _, m := range h.Members() {
					if m.NodeID == name || m.NodeID == rogue.Self().NodeID {
						t.Fatalf("%s lists %s as member", h.Self().NodeID, m.NodeID)
					}
				}
			}
			if tc.peerAllowed {
				return
			}
			// Inject: the handshake is refused (or the call is 403), the
			// entry is not stored and the refusal is counted.
			e, _ := testEntry(t, holderOf(t, rogue.cfg.Credentials))
			before, _ := honest[1].Stats(context.Background())
			status, err := injectEntry(honest[1], &rogue.cert, e)
			if err == nil && status != http.StatusForbidden {
				t.Fatalf("injection answered %d", status)
			}
			after, _ := honest[1].Stats(context.Background())
			if after.Refused <= before.Refused {
				t.Fatalf("refusal not counted (%d → %d)", before.Refused, after.Refused)
			}
			if _, ok, _ := honest[1].Store().Get(e.ID()); ok {
				t.Fatal("injected entry stored")
			}
		})
	}

	t.Run("no descriptor (plain memberlist with our label and gossip key)", func(t *testing.T) {
		c := memberlist.DefaultLANConfig()
		c.Name, c.BindAddr, c.BindPort, c.AdvertisePort = "rogue-bare", "127.0.0.1", 0, 0
		c.Label = GossipLabel(f.auth.PublicKey())
		c.SecretKey = f.gossipKey
		c.GossipInterval = 20 * time.Millisecond
		c.LogOutput = io.Discard
		ml, err := memberlist.Create(c)
		if err != nil {
			t.Fatal(err)
		}
		defer ml.Shutdown()
		// The honest node sends its state before judging ours, so the
		// join itself may "succeed" on the rogue's side.
		_, _ = ml.Join([]string{honest[0].GossipAddr()})
		testutil.Eventually(t, convergeTimeout, func() error {
			for {
				select {
				case ev := <-events:
					if ev.Type == MemberRefused && ev.Member.NodeID == "rogue-bare" {
						if !errors.Is(ev.Err, ErrNotEnrolled) {
							t.Fatalf("refused with %v, want ErrNotEnrolled", ev.Err)
						}
						return nil
					}
				default:
					return errors.New("no refusal event yet")
				}
			}
		})
		for _, h := range honest {
			if slices.Contains(memberlistNames(h), "rogue-bare") {
				t.Fatalf("%s: memberlist admitted the bare node", h.Self().NodeID)
			}
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		e, _ := testEntry(t, holderOf(t, honest[0].cfg.Credentials))
		if status, err := injectEntry(honest[1], nil, e); err == nil {
			t.Fatalf("call without a certificate answered %d", status)
		}
	})
}

// TestRevocationSpreads: a revocation list adopted by one node reaches
// every node; the revoked node drops out of membership, its entries can no
// longer be opened (NodeKey refuses it) and its peer calls are refused,
// also on connections opened before the revocation (403).
func TestRevocationSpreads(t *testing.T) {
	f := newTestFed(t)
	agents := f.cluster(t, 6, false) // five honest nodes and the victim
	victim := agents[5]
	e, seal := testEntry(t, holderOf(t, victim.cfg.Credentials))
	publish(t, victim, e)
	testutil.Eventually(t, convergeTimeout, func() error { return missing(agents, e.ID()) })

	call := func() (int, error) {
		req, _ := http.NewRequest(http.MethodGet, victim.PeerURL("node-1", PeerRevocationsPath), nil)
		resp, err := victim.PeerClient().Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := call(); err != nil || status/100 != 2 {
		t.Fatalf("call before revocation: %d %v", status, err)
	}

	rl, err := f.auth.SignRevocations(2, time.Now(), []Revocation{{NodeID: "node-5"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := agents[0].SetRevocations(rl); err != nil {
		t.Fatal(err)
	}
	if err := agents[0].SetRevocations(rl); !errors.Is(err, ErrRevocationsStale) {
		t.Fatalf("second SetRevocations: %v", err)
	}
	rest := agents[:5]
	testutil.Eventually(t, convergeTimeout, func() error {
		for _, a := range rest {
			if r := a.Revocations(); r == nil || r.Version != 2 {
				return fmt.Errorf("%s has not adopted version 2", a.Self().NodeID)
			}
			if aliveMembers(a) != len(rest)-1 {
				return fmt.Errorf("%s still lists %d members", a.Self().NodeID, aliveMembers(a))
			}
		}
		return nil
	})
	for _, a := range rest {
		got, _, _ := a.Store().Get(e.ID())
		if _, err := got.Open(seal, a); !errors.Is(err, locator.ErrUnknownHolder) {
			t.Fatalf("%s opens a revoked holder's entry: %v", a.Self().NodeID, err)
		}
	}
	status, err := call()
	if err == nil && status != http.StatusForbidden {
		t.Fatalf("revoked node's call answered %d", status)
	}
	t.Logf("revoked node's call: status %d, err %v", status, err)
}

package federation

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPeerHandler: a handler added with HandlePeer is reached through
// another node's PeerClient and PeerURL, and sees the caller's verified
// descriptor in PeerFromContext. Reserved and late registrations fail.
func TestPeerHandler(t *testing.T) {
	f := newTestFed(t)
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := PeerFromContext(r.Context())
		if !ok {
			http.Error(w, "no peer", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, d.NodeID+" "+d.Agency)
	})
	a0 := startAgent(t, f.config(f.creds(t, "node-0"), ""), func(a *Agent) {
		for _, tc := range []struct {
			pattern string
			ok      bool
		}{
			{"POST /peer/v1/whoami", true},
			{"POST /federation/v1/other", false},
			{"/federation/x", false},
			{"nonsense", false},
		} {
			if err := a.HandlePeer(tc.pattern, whoami); (err == nil) != tc.ok {
				t.Errorf("HandlePeer(%q): %v", tc.pattern, err)
			}
		}
	})
	if err := a0.HandlePeer("POST /peer/v1/late", whoami); !errors.Is(err, ErrStarted) {
		t.Fatalf("HandlePeer after Start: %v", err)
	}
	a1 := startAgent(t, f.config(f.creds(t, "node-1"), ""))
	if _, err := a1.Join([]string{a0.GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a0, a1)

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, a1.PeerURL("node-0", "/peer/v1/whoami"), nil)
	resp, err := a1.PeerClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "node-1 Agency node-1" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}

	req, _ = http.NewRequest(http.MethodPost, a1.PeerURL("node-7", "/peer/v1/whoami"), nil)
	if _, err := a1.PeerClient().Do(req); err == nil || !strings.Contains(err.Error(), "no peer address") {
		t.Fatalf("call to an unknown node: %v", err)
	}
}

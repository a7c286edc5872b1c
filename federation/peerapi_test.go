package federation

import (
	"bytes"
	"context"
	"crypto/tls"
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

// TestPeerMessageLimits: the message endpoint refuses oversized bodies
// (413) and malformed batches (400) from an authenticated peer, and
// accepts a well-formed one (202).
func TestPeerMessageLimits(t *testing.T) {
	f := newTestFed(t)
	cfg := f.config(f.creds(t, "node-0"), "")
	cfg.MaxMessageBytes = 64 << 10
	target := startAgent(t, cfg)
	caller := startAgent(t, f.config(f.creds(t, "node-1"), ""))
	post := func(body []byte) int {
		t.Helper()
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{caller.cert}}
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Post("https://"+target.PeerAddr()+PeerMessagesPath, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"well formed", appendFrame(nil, []byte("opaque to the transport")), http.StatusAccepted},
		{"too large", appendFrame(nil, make([]byte, 65<<10)), http.StatusRequestEntityTooLarge},
		{"empty", nil, http.StatusBadRequest},
		{"truncated", []byte{0x10, 1, 2}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(tc.body); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

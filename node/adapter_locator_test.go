package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/adapter"
	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// locatorNodes builds nodes over one shared locator MemStore (one replica
// standing for a fully replicated federation) with real holders, seals and
// holder signatures.
func locatorNodes(t *testing.T, ids ...string) map[string]*testNode {
	t.Helper()
	store, err := locator.NewMemStore(locator.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys := adapter.StaticNodeKeys{}
	privs := map[string]ed25519.PrivateKey{}
	for _, id := range ids {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys[id], privs[id] = pub, priv
		leaks.NoteNodeKey(priv)
	}
	out := map[string]*testNode{}
	for _, id := range ids {
		var secret [32]byte
		rand.Read(secret[:])
		leaks.NoteKey(leakscan.KindHolder, secret[:], "")
		h, err := locator.NewHolder(id, privs[id], secret)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = id, "Agency "+id, "school", t.TempDir()
		tok := &fakeTokenizer{}
		n, err := New(cfg, Options{
			Tokenizer: tok, Index: adapter.NewLocatorIndex(h, store, nil, keys, nil), Keyring: soloKeyring(id), Auth: tokens,
			Logger: slog.New(slog.NewTextHandler(testLogs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(func() {
			srv.Close()
			n.Shutdown(context.Background())
		})
		out[id] = &testNode{Node: n, srv: srv, tok: tok}
	}
	return out
}

func TestLocatorIndexEndToEnd(t *testing.T) {
	ns := locatorNodes(t, "csc", "gp")
	csc, gp := ns["csc"], ns["gp"]
	if r := csc.do(t, "POST", "/v1/records", "op-token", `{"localId":"k1","nhsNumber":"9990000018","category":"child-in-need"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	// A practitioner at the GP watches the person's key (from a locate).
	r := gp.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	var res LocateResult
	json.Unmarshal([]byte(r.body), &res)
	if len(res.Holders) != 1 || res.Holders[0].NodeID != "csc" || res.Holders[0].Category != "child-in-need" || res.SelfHolds {
		t.Fatalf("locate: %s", r.body)
	}
	url := "ws" + strings.TrimPrefix(gp.srv.URL, "http") + "/v1/watch"
	hdr := map[string][]string{"Authorization": {"Bearer prac-token"}}
	conn, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	conn.WriteJSON(map[string]string{"watch": res.LookupKey})
	var nt Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "watching" {
		t.Fatalf("ack: %v %+v", err, nt)
	}
	// csc's own staff watch too: they get a "match" when the GP registers.
	cconn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(csc.srv.URL, "http")+"/v1/watch", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer cconn.Close()
	cconn.SetReadDeadline(time.Now().Add(10 * time.Second))
	// The GP registers the same person: the watcher sees "involved".
	if r := gp.do(t, "POST", "/v1/records", "op-token", `{"localId":"g1","nhsNumber":"9990000018"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "involved" || nt.LookupKey != res.LookupKey || nt.Entry == "" {
		t.Fatalf("notice: %v %+v", err, nt)
	}
	var m Notice
	for m.Type != "match" {
		if err := cconn.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
	}
	if m.LocalID != "k1" || m.Holder == nil || m.Holder.NodeID != "gp" {
		t.Fatalf("match: %+v", m)
	}
	// Objection at csc: withdrawn, and gone from the GP's answer.
	if r := csc.do(t, "POST", "/v1/records/k1/objection", "op-token", ""); r.status != 204 {
		t.Fatalf("object: %d %s", r.status, r.body)
	}
	r = gp.do(t, "POST", "/v1/locate", "prac-token", `{"nhsNumber":"9990000018","purpose":"safeguarding"}`)
	res = LocateResult{}
	json.Unmarshal([]byte(r.body), &res)
	if len(res.Holders) != 0 || !res.SelfHolds {
		t.Fatalf("after objection: %s", r.body)
	}
	// A new epoch's pass (run at a start under a new epoch) does not
	// bring the objected record back.
	if _, n, err := csc.records.EnqueueEpoch(csc.keyGeneration()+1, "", 100, records.Note{}); err != nil || n != 0 {
		t.Fatalf("the objected record was queued for the new epoch: %d, %v", n, err)
	}
}

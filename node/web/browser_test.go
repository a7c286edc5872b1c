package web

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// fakeNode serves the page, the real wasm module and a node API whose
// sign-in, roles and CSRF are the real auth package and whose token issuers
// are real wasm.ShareIssuers of a 2-of-3 key per purpose; lookup, contact
// and watch answer canned holders. It
// records every request so the test can prove the NHS number never left
// the browser.
type fakeNode struct {
	t *testing.T
	// keys are the token keys by purpose, dealt 2 of 3 (a federation's
	// would come from a DKG).
	keys map[string]wasmtest.Dealt
	// named makes lookups answer "holders" as well as sealed entries;
	// without it the fake answers as the real node does (entries and
	// members only), and the page must open the entries itself.
	named bool
	// entries are the sealed entries under 999 000 0018 for safeguarding,
	// by holder; members are the federation's members (not the impostor),
	// home among them: the node that serves the page.
	entries map[string]string
	members []map[string]string
	// shielded, if set, is a shielded clinic's entry (brokered by the
	// school) that lookups answer besides the others (addShielded).
	shielded string

	mu       sync.Mutex
	seen     []string // method, URL and body of every request
	lookups  []map[string]string
	contacts []map[string]string
	watches  int // WebSocket watches opened
	// watchEnded receives once for each watch the page closes.
	watchEnded chan struct{}
	// sockets are the page's open WebSockets (true: it watches a key;
	// false: the staff socket, which only listens); push writes to all.
	sockets map[*fakeSocket]bool
	// received and sent are the contact requests GET /v1/contact-requests
	// answers, by id (sent: those the page made, as the node stores them).
	received map[string]map[string]any
	sent     map[string]map[string]any
	// issuersDown makes evaluations answer as a node does when fewer than
	// t token issuers answer.
	issuersDown bool
	// rotated, when set, puts the fake in a key rotation's overlap
	// (rotation_browser_test.go).
	rotated *rotation
	// stored are the user's stored watches (POST /v1/watches), oldest
	// first, as GET /v1/watches answers them.
	stored []map[string]any
}

// storedWatches serves /v1/watches as the node does, for one user.
func (f *fakeNode) storedWatches(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "GET":
		httpx.WriteJSON(w, 200, map[string]any{"watches": f.stored})
	case r.Method == "POST" && r.PathValue("id") == "":
		var req struct {
			Purpose    string   `json:"purpose"`
			LookupKeys []string `json:"lookupKeys"`
		}
		if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
			return
		}
		v := map[string]any{"id": fmt.Sprintf("watch%017d", len(f.stored)+1), "purpose": req.Purpose, "keys": len(req.LookupKeys),
			"started": "2026-11-25T10:00:00Z", "expires": "2027-02-23T10:00:00Z", "unseen": 0, "notices": []map[string]any{}}
		f.stored = append(f.stored, v)
		httpx.WriteJSON(w, 201, v)
	case r.Method == "POST": // seen
		for _, v := range f.stored {
			if v["id"] == r.PathValue("id") {
				for _, n := range v["notices"].([]map[string]any) {
					n["seen"] = true
				}
				v["unseen"] = 0
			}
		}
		w.WriteHeader(204)
	case r.Method == "DELETE":
		f.stored = slices.DeleteFunc(f.stored, func(v map[string]any) bool { return v["id"] == r.PathValue("id") })
		w.WriteHeader(204)
	}
}

// storeNotice adds a notice to the stored watch i (0: the first) at when,
// as the node stores one, and returns it as the node sends it live.
func (f *fakeNode) storeNotice(i int, typ, when string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.stored[i]
	ns := v["notices"].([]map[string]any)
	n := map[string]any{"seq": len(ns) + 1, "type": typ, "at": when, "seen": false}
	v["notices"] = append(ns, n)
	v["unseen"] = v["unseen"].(int) + 1
	return map[string]any{"type": typ, "watchId": v["id"], "seq": n["seq"], "at": when}
}

// fakeSocket is one WebSocket, written by one writer at a time.
type fakeSocket struct {
	mu sync.Mutex
	c  *websocket.Conn
}

func (s *fakeSocket) send(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.WriteJSON(v)
}

// push sends a notice on every open socket, as the node's hub does to its
// staff, and returns how many listened (staff sockets).
func (f *fakeNode) push(v any) int {
	f.mu.Lock()
	var ss []*fakeSocket
	staff := 0
	for s, watching := range f.sockets {
		ss = append(ss, s)
		if !watching {
			staff++
		}
	}
	f.mu.Unlock()
	for _, s := range ss {
		s.send(v)
	}
	return staff
}

// staffSockets counts the open sockets that watch no key.
func (f *fakeNode) staffSockets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, watching := range f.sockets {
		if !watching {
			n++
		}
	}
	return n
}

// waitStaff waits until the page's staff socket is open.
func (f *fakeNode) waitStaff(ctx context.Context) {
	f.t.Helper()
	for f.staffSockets() == 0 {
		select {
		case <-ctx.Done():
			f.t.Fatal("the page opened no staff socket")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// receive adds a request from another agency to the inbox, as the node
// stores it, and returns it.
func (f *fakeNode) receive(id string, from map[string]string, requester, localID, message string) map[string]any {
	v := map[string]any{"id": id, "direction": "received", "state": "new", "nodeId": from["nodeId"], "agency": from["agency"],
		"requester": requester, "purpose": "safeguarding", "localId": localID, "message": message,
		"created": "2026-11-25T10:15:00Z", "updated": "2026-11-25T10:15:00Z"}
	f.mu.Lock()
	f.received[id] = v
	f.mu.Unlock()
	return v
}

// decideSent records the holder's decision on a request the page made
// and returns it as the node would notify it.
func (f *fakeNode) decideSent(id, state, field, text string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.sent[id]
	if v == nil {
		f.t.Fatalf("no sent request %s", id)
	}
	v["state"], v[field], v["updated"] = state, text, "2026-11-25T11:00:00Z"
	out := map[string]any{}
	for k, x := range v {
		out[k] = x
	}
	return out
}

func (f *fakeNode) contactList(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]map[string]any{"received": {}, "sent": {}}
	for _, v := range f.received {
		out["received"] = append(out["received"], v)
	}
	for _, v := range f.sent {
		out["sent"] = append(out["sent"], v)
	}
	httpx.WriteJSON(w, 200, out)
}

// decide answers or declines a received request, once, as the node does.
func (f *fakeNode) decide(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		v := f.received[r.PathValue("id")]
		switch {
		case v == nil:
			httpx.WriteError(w, 404, httpx.CodeContactNotFound, "no contact request received with that id")
		case v["state"] != "new":
			httpx.WriteError(w, 409, httpx.CodeContactDecided, "this contact request was already decided")
		case kind == "answer" && strings.TrimSpace(req["contact"]) != "":
			v["state"], v["contact"], v["decidedBy"], v["delivery"] = "answered", req["contact"], "alice", "delivered"
			httpx.WriteJSON(w, 200, v)
		case kind == "decline" && strings.TrimSpace(req["reason"]) != "":
			v["state"], v["reason"], v["decidedBy"], v["delivery"] = "declined", req["reason"], "alice", "delivered"
			httpx.WriteJSON(w, 200, v)
		default:
			httpx.WriteError(w, 400, httpx.CodeInvalidText, "name a contact or give a reason")
		}
	}
}

const epoch = 202611

var (
	// home is the agency whose node serves the page: it holds a record from
	// the start, and the page must not list it among the others.
	home   = map[string]string{"nodeId": "node-home", "agency": "Northshire Children's Social Care", "category": "children-social-care", "since": "2024-03-01T00:00:00Z"}
	school = map[string]string{"nodeId": "node-school", "agency": "Riverside Primary School", "category": "education", "since": "2025-09-01T00:00:00Z"}
	gp     = map[string]string{"nodeId": "node-gp", "agency": "Elm Street Surgery", "category": "gp", "since": "2026-11-25T09:00:00Z"}
	// impostor seals entries but is not a member: its entries must not show.
	impostor = map[string]string{"nodeId": "node-impostor", "agency": "Impostor", "category": "health", "since": "2026-01-01T00:00:00Z"}
)

func (f *fakeNode) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.seen = append(f.seen, r.Method+" "+r.URL.String()+" "+string(body))
		f.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (f *fakeNode) evaluate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Purpose string   `json:"purpose"`
		Epoch   uint32   `json:"epoch"`
		Blinded []string `json:"blinded"`
	}
	if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
		return
	}
	f.mu.Lock()
	down, rot := f.issuersDown, f.rotated
	f.mu.Unlock()
	if down {
		httpx.WriteError(w, 503, httpx.CodeIssuersUnavailable, issuersDownMessage)
		return
	}
	var blinded [][]byte
	for _, s := range req.Blinded {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			httpx.WriteError(w, 400, httpx.CodeBadRequest, "blinded element is not base64")
			return
		}
		blinded = append(blinded, b)
	}
	d, ok := f.keys[req.Purpose]
	ep := uint32(epoch)
	if rot != nil && req.Epoch != epoch {
		d, ok = rot.next[req.Purpose] // the newest key: asked by default
		ep = epoch + 1
	}
	if !ok {
		httpx.WriteError(w, 403, httpx.CodePurpose, "not authorised for that purpose")
		return
	}
	// As the node answers: t partials (issuers 1 and 3, so that the
	// combine's Lagrange coefficients are not the trivial ones) with each
	// issuer's public share.
	var partials []map[string]any
	for _, i := range []int{0, 2} {
		ev, proof, err := d.Issuers[i].Evaluate(blinded)
		if err != nil {
			httpx.WriteError(w, 400, httpx.CodeBadRequest, "cannot evaluate")
			return
		}
		var evs []string
		for _, e := range ev {
			evs = append(evs, base64.StdEncoding.EncodeToString(e))
		}
		sh := d.KeySet.Shares[i]
		partials = append(partials, map[string]any{"issuer": sh.NodeID, "index": sh.Index, "publicShare": base64.StdEncoding.EncodeToString(sh.Key),
			"evaluated": evs, "proof": base64.StdEncoding.EncodeToString(proof)})
	}
	out := map[string]any{"purpose": req.Purpose, "epoch": ep, "t": d.KeySet.T,
		"groupKey": base64.StdEncoding.EncodeToString(d.KeySet.GroupKey), "partials": partials}
	if rot != nil {
		out["epochs"] = []uint32{epoch + 1, epoch}
	}
	httpx.WriteJSON(w, 200, out)
}

// dealtEvaluator evaluates in process with a dealt key's first t shares,
// for the fake's own tokens (it plays every holder).
type dealtEvaluator struct{ d wasmtest.Dealt }

func (e dealtEvaluator) KeySet(context.Context, string, uint32) (wasm.KeySet, error) {
	return e.d.KeySet, nil
}

func (e dealtEvaluator) EvaluatePartials(_ context.Context, _ string, _ uint32, blinded [][]byte) ([]wasm.Partial, error) {
	var out []wasm.Partial
	for _, s := range e.d.Issuers[:e.d.KeySet.T] {
		p, err := s.Partial(blinded)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// agencyNode is a holder node of the fake federation: a real
// locator.Holder, so entries are sealed and signed exactly as a node does.
type agencyNode struct {
	holder *locator.Holder
	pub    ed25519.PublicKey
	view   map[string]string
}

func newAgencyNode(t *testing.T, view map[string]string, seed byte) agencyNode {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	var secret [32]byte
	secret[0] = seed
	h, err := locator.NewHolder(view["nodeId"], key, secret)
	if err != nil {
		t.Fatal(err)
	}
	return agencyNode{holder: h, pub: key.Public().(ed25519.PublicKey), view: view}
}

// entry publishes this node's entry under the keys of number for purpose
// (computed natively from the issuer's key: the fake plays every holder).
func (a agencyNode) entry(t *testing.T, d wasmtest.Dealt, number, purpose string) string {
	t.Helper()
	_, e := a.entryAt(t, d, number, purpose)
	return e
}

// entryAt is entry, also returning the lookup key, under the epoch of d.
func (a agencyNode) entryAt(t *testing.T, d wasmtest.Dealt, number, purpose string) ([16]byte, string) {
	t.Helper()
	toks, err := wasm.NativeThresholdTokens(context.Background(), nil, dealtEvaluator{d}, "nhs", []string{number}, purpose, d.KeySet.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	lookup, seal := toks[0].LookupKey, toks[0].SealKey
	since, err := time.Parse(time.RFC3339, a.view["since"])
	if err != nil {
		t.Fatal(err)
	}
	e, err := a.holder.Publish(lookup, seal, a.view["category"], 1, since, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return lookup, base64.StdEncoding.EncodeToString(e.Encode())
}

// addShielded makes lookups also answer a shielded clinic's entry under
// 999 000 0018 for safeguarding: it names the school as its broker, and
// the clinic is not a member the page is told of by name.
func (f *fakeNode) addShielded(t *testing.T, brokerKey ed25519.PublicKey) {
	t.Helper()
	clinic := newAgencyNode(t, map[string]string{"nodeId": "node-clinic", "agency": "Bay Sexual Health Clinic", "category": "sexual-health", "since": "2025-01-10T00:00:00Z"}, 9)
	sh, err := clinic.holder.WithBroker(school["nodeId"], brokerKey)
	if err != nil {
		t.Fatal(err)
	}
	clinic.holder = sh
	f.shielded = clinic.entry(t, f.keys["safeguarding"], "9990000018", "safeguarding")
}

func (a agencyNode) member() map[string]string {
	return map[string]string{"nodeId": a.view["nodeId"], "agency": a.view["agency"], "category": a.view["category"], "publicKey": base64.StdEncoding.EncodeToString(a.pub)}
}

// lookup answers as the real node does: the sealed entries under the
// lookup key, the members' public keys and this node's id (home). Home and
// the school hold a record from the start, the GP after the first lookup;
// an impostor's entry (its node is not a member) and a garbled one are
// always there and must never show.
func (f *fakeNode) lookup(w http.ResponseWriter, r *http.Request) {
	var req map[string]string
	if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
		return
	}
	f.mu.Lock()
	f.lookups = append(f.lookups, req)
	n := len(f.lookups)
	rot := f.rotated
	f.mu.Unlock()
	if rot != nil {
		k, _ := base64.StdEncoding.DecodeString(req["lookupKey"])
		httpx.WriteJSON(w, 200, map[string]any{"entries": rot.byKey[string(k)], "members": f.members, "self": home["nodeId"]})
		return
	}
	holders := []map[string]string{home, school}
	entries := []string{f.entries["home"], f.entries["school"], f.entries["impostor"], "c2VhbGVk"}
	if f.shielded != "" {
		entries = append(entries, f.shielded)
	}
	if n > 1 { // after the GP joined
		holders = append(holders, gp)
		entries = append(entries, f.entries["gp"])
	}
	out := map[string]any{"entries": entries, "members": f.members, "self": home["nodeId"]}
	if f.named {
		out["holders"] = holders
	}
	httpx.WriteJSON(w, 200, out)
}

func (f *fakeNode) subjectAccess(w http.ResponseWriter, r *http.Request) {
	var req map[string]string
	if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
		return
	}
	if req["nhsNumber"] != "9990000018" {
		httpx.WriteError(w, 400, httpx.CodeBadRequest, "expected the canonical number")
		return
	}
	httpx.WriteJSON(w, 200, map[string]any{"events": []map[string]any{
		{"index": 3, "time": "2026-11-25T09:00:00Z", "actor": "user:alice", "action": "lookup", "purpose": "safeguarding", "count": 2, "outcome": "ok"},
		{"index": 9, "time": "2026-11-25T09:05:00Z", "actor": "user:alice", "action": "contact-request", "purpose": "safeguarding", "peer": "node-school", "outcome": "ok"},
	}})
}

func (f *fakeNode) contact(w http.ResponseWriter, r *http.Request) {
	var req map[string]string
	if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
		return
	}
	f.mu.Lock()
	f.contacts = append(f.contacts, req)
	id := fmt.Sprintf("sent%018d", len(f.contacts))
	agency := req["nodeId"]
	for _, v := range []map[string]string{school, gp, home} {
		if v["nodeId"] == req["nodeId"] {
			agency = v["agency"]
		}
	}
	f.sent[id] = map[string]any{"id": id, "direction": "sent", "state": "new", "nodeId": req["nodeId"], "agency": agency,
		"requester": "alice", "purpose": req["purpose"], "created": "2026-11-25T10:00:00Z", "updated": "2026-11-25T10:00:00Z"}
	f.mu.Unlock()
	httpx.WriteJSON(w, 200, map[string]string{"id": id, "status": "pending"})
}

func (f *fakeNode) watch(a *auth.Authenticator) http.HandlerFunc {
	up := websocket.Upgrader{CheckOrigin: a.CheckOrigin}
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(4 << 10)
		s := &fakeSocket{c: c}
		f.mu.Lock()
		f.sockets[s] = false
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			delete(f.sockets, s)
			f.mu.Unlock()
		}()
		watched := false
		for { // until the page closes
			var msg struct {
				Watch string `json:"watch"`
			}
			if err := c.ReadJSON(&msg); err != nil {
				break
			}
			if msg.Watch == "" {
				continue
			}
			watched = true
			f.mu.Lock()
			f.watches++
			f.sockets[s] = true
			f.mu.Unlock()
			s.send(map[string]string{"type": "watching", "lookupKey": msg.Watch})
			// A new agency becomes involved; this notice carries no holder,
			// so the page must look up again.
			s.send(map[string]string{"type": "involved", "lookupKey": msg.Watch})
		}
		if watched {
			select {
			case f.watchEnded <- struct{}{}:
			default:
			}
		}
	}
}

func startPage(t *testing.T, named bool) (*fakeNode, string) {
	t.Helper()
	return startPageWith(t, named, nil)
}

// startPageWith is startPage with the sign-in configuration changed by mod.
func startPageWith(t *testing.T, named bool, mod func(*auth.Config)) (*fakeNode, string) {
	t.Helper()
	f := &fakeNode{t: t, keys: map[string]wasmtest.Dealt{}, named: named, entries: map[string]string{}, watchEnded: make(chan struct{}, 16),
		sockets: map[*fakeSocket]bool{}, received: map[string]map[string]any{}, sent: map[string]map[string]any{}}
	for _, p := range []string{"safeguarding", "direct-care"} {
		d, err := wasmtest.Deal(rand.Reader, p, epoch, 2, "node-home", "node-gp", "node-ed")
		if err != nil {
			t.Fatal(err)
		}
		f.keys[p] = d
	}
	for i, v := range []map[string]string{school, gp, impostor, home} {
		a := newAgencyNode(t, v, byte(i+1))
		f.entries[strings.TrimPrefix(v["nodeId"], "node-")] = a.entry(t, f.keys["safeguarding"], "9990000018", "safeguarding")
		if v["nodeId"] != impostor["nodeId"] {
			f.members = append(f.members, a.member())
		}
	}
	cfg := auth.DefaultConfig()
	cfg.UsersPath = filepath.Join(t.TempDir(), auth.UsersFileName)
	cfg.Argon2 = auth.TestArgon2Params
	// As node/stack wires it: the page's node is home, and its
	// practitioners may look up under both purposes.
	cfg.Agency = auth.SessionAgency{NodeID: home["nodeId"], Name: home["agency"], Category: home["category"]}
	cfg.Purposes = practitionerPurposes("safeguarding", "direct-care")
	if mod != nil {
		mod(&cfg)
	}
	a, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store().AddUser("alice", auth.RolePractitioner, []byte("correct horse battery")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store().AddUser("audrey", auth.RoleAuditor, []byte("correct horse battery")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store().AddUser("oscar", auth.RoleOperator, []byte("correct horse battery")); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(FS))
	mux.Handle("GET /wasm/", http.StripPrefix("/wasm/", http.FileServerFS(wasm.WebFS)))
	for _, m := range []string{"GET", "POST", "DELETE"} {
		mux.Handle(m+" /v1/session", a.SessionHandler())
	}
	mux.Handle("POST /v1/tokens/evaluate", a.Protect(http.HandlerFunc(f.evaluate), auth.RolePractitioner))
	mux.Handle("POST /v1/lookup", a.Protect(http.HandlerFunc(f.lookup), auth.RolePractitioner))
	mux.Handle("POST /v1/contact-requests", a.Protect(http.HandlerFunc(f.contact), auth.RolePractitioner))
	mux.Handle("GET /v1/contact-requests", a.Protect(http.HandlerFunc(f.contactList), auth.RolePractitioner, auth.RoleOperator))
	mux.Handle("POST /v1/contact-requests/{id}/answer", a.Protect(f.decide("answer"), auth.RolePractitioner, auth.RoleOperator))
	mux.Handle("POST /v1/contact-requests/{id}/decline", a.Protect(f.decide("decline"), auth.RolePractitioner, auth.RoleOperator))
	mux.Handle("GET /v1/watch", a.Protect(f.watch(a), auth.RolePractitioner))
	for _, route := range []string{"GET /v1/watches", "POST /v1/watches", "DELETE /v1/watches/{id}", "POST /v1/watches/{id}/seen"} {
		mux.Handle(route, a.Protect(http.HandlerFunc(f.storedWatches), auth.RolePractitioner))
	}
	mux.Handle("POST /v1/audit/subject-access", a.Protect(http.HandlerFunc(f.subjectAccess), auth.RoleAuditor))
	srv := httptest.NewServer(f.record(mux))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// practitionerPurposes is an auth.Config.Purposes that offers purposes to
// practitioners and nothing to other roles, as node/stack's does.
func practitionerPurposes(purposes ...string) func(auth.Principal) []string {
	return func(p auth.Principal) []string {
		if p.Role != auth.RolePractitioner {
			return nil
		}
		return purposes
	}
}

func browser(t *testing.T) context.Context {
	t.Helper()
	tctx, cancelT := context.WithTimeout(testutil.Chromium(t), 90*time.Second)
	t.Cleanup(cancelT)
	return tctx
}

// pageDriver wraps the chromedp calls the page tests make.
type pageDriver struct {
	t   *testing.T
	ctx context.Context
}

func (d pageDriver) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	d.t.Helper()
	if err := chromedp.Do(d.ctx, actions...); err != nil {
		d.t.Fatalf("%s: %v", name, err)
	}
}

func (d pageDriver) text(sel string) string {
	d.t.Helper()
	s, err := chromedp.Run(d.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		d.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

func (d pageDriver) waitFor(name, expr string) {
	d.t.Helper()
	if _, err := chromedp.Run(d.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		state, _ := chromedp.Run(d.ctx, chromedp.Evaluate[string](`JSON.stringify({value: document.getElementById("nhs-number").value, error: document.getElementById("nhs-error").textContent, summary: document.getElementById("error-summary").textContent.trim(), results: document.getElementById("results-summary").textContent, notices: document.getElementById("notices").textContent, status: document.getElementById("status").textContent})`))
		d.t.Fatalf("waiting for %s: %v; page state %s", name, err, state)
	}
}

func (d pageDriver) signIn(url string) { d.signInAs(url, "alice", "#nhs-number") }

func (d pageDriver) signInAs(url, user, first string) {
	d.t.Helper()
	d.step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	d.step("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS(first)))
}

// ownAgencyApart checks the rule POST /v1/locate documents (its own agency
// is never among the holders; selfHolds says it holds a record too): the
// page lists only the other agencies, says separately that the
// practitioner's own agency holds a record, and offers no contact request
// for it.
func (d pageDriver) ownAgencyApart(others int) {
	d.t.Helper()
	want := "1 other agency holds a record."
	if others != 1 {
		want = strconv.Itoa(others) + " other agencies hold a record."
	}
	if got := d.text("#results-summary"); got != want {
		d.t.Errorf("summary %q, want %q", got, want)
	}
	if vis, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("results-self").hidden`)); !vis {
		d.t.Error("the page does not say that the practitioner's own agency holds a record")
	}
	if got := d.text("#results-self"); got != "Your agency also holds a record." {
		d.t.Errorf("own agency line %q", got)
	}
	if rows := d.text("#results-body"); strings.Contains(rows, home["agency"]) {
		d.t.Errorf("the own agency is listed among the others: %q", rows)
	}
	n, err := chromedp.Run(d.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results-body button").length`))
	if err != nil || n > others {
		d.t.Errorf("%d contact buttons for %d other agencies (%v)", n, others, err)
	}
}

// TestAuditorSubjectAccess: an auditor sees the subject-access form (not the
// practitioner's search), gets the same as-you-type check, and a table of
// the events the node returns.
func TestAuditorSubjectAccess(t *testing.T) {
	d := pageDriver{t, browser(t)}
	_, url := startPage(t, false)
	d.signInAs(url, "audrey", "#sar-number")
	if vis, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("search").hidden`)); vis {
		t.Error("an auditor sees the practitioner's search")
	}
	d.step("type a wrong check digit", chromedp.SendKeys(chromedp.CSS("#sar-number"), "999 000 0019"))
	d.waitFor("the inline reason", `!document.getElementById("sar-error").hidden`)
	if got := d.text("#sar-error"); got != wordingNotValid {
		t.Errorf("inline error %q, want %q", got, wordingNotValid)
	}
	if _, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`(document.getElementById("sar-number").value = "", true)`)); err != nil {
		t.Fatal(err)
	}
	d.step("search", chromedp.SendKeys(chromedp.CSS("#sar-number"), "999 000 0018"), chromedp.Click(chromedp.CSS("#sar-button")))
	d.waitFor("the events", `document.querySelectorAll("#sar-body tr").length === 2`)
	if got := d.text("#sar-summary"); got != "2 events concern this person." {
		t.Errorf("summary %q", got)
	}
	if row := d.text("#sar-body tr:nth-child(2)"); !strings.Contains(row, "user:alice") || !strings.Contains(row, "Asked for contact") || !strings.Contains(row, "node-school") {
		t.Errorf("second row %q", row)
	}
}

// TestSignInSaysHowLongToWait: when sign-in is refused for too many
// failures, the page says how long to wait (from Retry-After), not just
// that something went wrong.
func TestSignInSaysHowLongToWait(t *testing.T) {
	d := pageDriver{t, browser(t)}
	_, url := startPageWith(t, false, func(c *auth.Config) {
		c.LoginFreeFailures, c.LoginBackoff = 1, 90*time.Second
	})
	// One free failure, then one that starts a 90 s back-off for alice at
	// this address (the browser's too: both are loopback).
	for range 2 {
		res, err := http.Post(url+"/v1/session", "application/json", strings.NewReader(`{"username":"alice","password":"wrong password"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", res.StatusCode)
		}
	}
	d.step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	d.step("sign in during the back-off",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#signin-button")))
	d.waitFor("the error summary", `!document.getElementById("error-summary").hidden`)
	got := d.text("#error-summary-list")
	m := regexp.MustCompile(`Try again in (\d+) seconds\.`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("the summary says %q, want how many seconds to wait", got)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n > 90 {
		t.Errorf("the summary says to wait %d seconds of a 90 s back-off", n)
	}
}

// TestPageOpensSealedEntries runs the page against a node that answers as
// the real one does (sealed entries and members, no holders): the seal key
// stays in the browser, the wasm module opens the entries there and checks
// each holder's node signature against the members, and the page lists the
// agencies by name, live notices included. The impostor's and the garbled
// entries are dropped, never shown.
func TestPageOpensSealedEntries(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	d.signIn(url)
	d.step("search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "9990000018"), chromedp.Click(chromedp.CSS("#search-button")))
	d.waitFor("the holder", `document.querySelectorAll("#results-body tr").length === 1`)
	d.ownAgencyApart(1)
	if row := d.text("#results-body tr"); !strings.Contains(row, "Riverside Primary School") || !strings.Contains(row, "Education") || !strings.Contains(row, "1 September 2025") || !strings.Contains(row, "Request contact") {
		t.Errorf("result row %q", row)
	}
	d.step("request contact", chromedp.Click(chromedp.CSS("#results-body button")))
	d.waitFor("the contact answer", `document.getElementById("results-body").textContent.includes("Request sent")`)
	d.step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	d.waitFor("the live notice", `document.getElementById("notices").textContent.includes("Elm Street Surgery is now involved")`)
	d.waitFor("the new row", `document.querySelectorAll("#results-body tr").length === 2`)
	d.ownAgencyApart(2)
	if body := d.text("#results"); strings.Contains(body, "Impostor") || strings.Contains(body, "node-impostor") {
		t.Errorf("the impostor's entry is shown: %q", body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.seen {
		if strings.Contains(s, "sealKey") || strings.Contains(s, "9990000018") {
			t.Errorf("a request carried the seal key or the number: %.80q", s)
		}
	}
	if len(f.contacts) != 1 || f.contacts[0]["nodeId"] != "node-school" {
		t.Errorf("contact requests %v", f.contacts)
	}
}

// TestStaleResultsNeverSurvive: the answer for one person must never stand
// under another number. Results are headed by the number and purpose they
// answer, and vanish the moment either is edited: by one more digit, by
// clearing the field, by another purpose; a live watch ends with them.
func TestStaleResultsNeverSurvive(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	d.signIn(url)
	search := func() {
		d.step("search", chromedp.Click(chromedp.CSS("#search-button")))
		d.waitFor("results", `!document.getElementById("results").hidden && document.getElementById("results-summary").textContent !== ""`)
	}
	gone := func(after string) {
		t.Helper()
		d.waitFor("the results to go "+after, `document.getElementById("results").hidden`)
		if n, _ := chromedp.Run(d.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results-body tr").length + document.getElementById("notices").children.length`)); n != 0 {
			t.Errorf("%d rows or notices left on the page %s", n, after)
		}
		if s := d.text("#results-for") + d.text("#results-summary"); s != "" {
			t.Errorf("results text %q left on the page %s", s, after)
		}
	}
	d.step("type a number", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0018"))
	search()
	if got := d.text("#results-for"); got != "For NHS number 999 000 0018, purpose: Safeguarding." {
		t.Errorf("results headed %q, want the number and purpose they answer", got)
	}
	d.step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	d.waitFor("the watch to start", `document.getElementById("notices").textContent.includes("You will be told here")`)
	d.step("type one more digit", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "7"))
	gone("after the number changed")
	select { // the page closed the old number's watch
	case <-f.watchEnded:
	case <-d.ctx.Done():
		t.Error("the watch of the old number is still open")
	}
	d.step("clear the field and type the number again",
		chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById("nhs-number"); e.value = ""; e.dispatchEvent(new Event("input")); })()`),
		chromedp.SendKeys(chromedp.CSS("#nhs-number"), "9990000018"))
	search()
	d.step("choose another purpose", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById("purpose"); s.value = "direct-care"; s.dispatchEvent(new Event("change")); })()`))
	gone("after the purpose changed")
	search()
	if got := d.text("#results-for"); got != "For NHS number 999 000 0018, purpose: Direct care." {
		t.Errorf("results headed %q", got)
	}
	d.step("make the field invalid", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "x"))
	gone("after the number became invalid")
}

// TestPageInBrowser drives the page as a practitioner would: sign in, type
// a number with a wrong check digit (the reason shows as they type), submit
// it (the error summary takes focus), type a valid one, see who is involved,
// request contact, watch, and see a live notice add the new agency.
func TestPageInBrowser(t *testing.T) {
	ctx := browser(t)
	f, url := startPage(t, true)

	d := pageDriver{t, ctx}
	step, text, waitFor := d.step, d.text, d.waitFor

	step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
	step("sign in",
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
		chromedp.Click(chromedp.CSS("#signin-button")),
		chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	if got := text("#account-name"); got != "alice (practitioner)" {
		t.Errorf("account shows %q", got)
	}
	if vis, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("subject").hidden`)); vis {
		t.Error("a practitioner sees the auditor's subject-access form")
	}

	step("type a wrong check digit", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0019"))
	waitFor("the inline reason", `!document.getElementById("nhs-error").hidden`)
	reason := text("#nhs-error")
	if !strings.Contains(reason, "check it against the record") || strings.IndexFunc(reason, unicode.IsDigit) >= 0 {
		t.Errorf("inline error %q: want the check-digit reason, naming no digit (the right one would make it another person's number)", reason)
	}
	if cls, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("nhs-group").className`)); !strings.Contains(cls, "sp-form-group--error") {
		t.Errorf("group class %q lacks the error style", cls)
	}
	step("submit it", chromedp.Click(chromedp.CSS("#search-button")))
	waitFor("the error summary to take focus", `document.activeElement && document.activeElement.id === "error-summary"`)
	if s := text("#error-summary-list"); !strings.Contains(s, "check it against the record") || strings.Contains(s, "8") {
		t.Errorf("error summary %q lacks the reason", s)
	}

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.getElementById("nhs-number").value = "", true)`)); err != nil {
		t.Fatal(err)
	}
	step("type a valid number", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0018"))
	waitFor("the error to clear", `document.getElementById("nhs-error").hidden`)
	step("search", chromedp.Click(chromedp.CSS("#search-button")))
	waitFor("results", `document.querySelectorAll("#results-body tr").length === 1`)
	if row := text("#results-body tr"); !strings.Contains(row, "Riverside Primary School") || !strings.Contains(row, "Education") || !strings.Contains(row, "1 September 2025") {
		t.Errorf("result row %q", row)
	}
	d.ownAgencyApart(1)

	step("request contact", chromedp.Click(chromedp.CSS("#results-body button")))
	waitFor("the contact answer", `document.getElementById("results-body").textContent.includes("Request sent")`)

	step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	waitFor("the live notice", `document.getElementById("notices").textContent.includes("Elm Street Surgery is now involved")`)
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results-body tr").length`)); n != 2 {
		t.Errorf("after the notice the table has %d rows, want 2", n)
	}
	d.ownAgencyApart(2)

	// A reload keeps the session (GET /v1/session returns the CSRF token),
	// and signing out ends it.
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	step("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#username")))
	step("reload after sign-out", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#username")))
	if vis, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("search").hidden`)); vis {
		t.Error("the search form shows after signing out")
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var signOuts int
	for _, s := range f.seen {
		if strings.HasPrefix(s, "DELETE /v1/session") {
			signOuts++
		}
	}
	if signOuts != 1 {
		t.Errorf("%d sign-out requests, want 1", signOuts)
	}
	// The number never reached the server, in any form.
	for _, s := range f.seen {
		for _, form := range []string{"9990000018", "999 000 0018", "999%20000%200018", "9990000019"} {
			if strings.Contains(s, form) {
				t.Errorf("a request carried the NHS number: %.80q", s)
			}
		}
	}
	if len(f.lookups) < 2 {
		t.Fatalf("%d lookups, want the search and the re-lookup after the notice", len(f.lookups))
	}
	lk, err := base64.StdEncoding.DecodeString(f.lookups[0]["lookupKey"])
	if _, sent := f.lookups[0]["sealKey"]; err != nil || len(lk) != 16 || sent || f.lookups[0]["purpose"] != "safeguarding" {
		t.Errorf("lookup request %v: want a 16-byte lookup key, the purpose, and no seal key", f.lookups[0])
	}
	if len(f.contacts) != 1 || f.contacts[0]["nodeId"] != "node-school" || f.contacts[0]["lookupKey"] != f.lookups[0]["lookupKey"] {
		b, _ := json.Marshal(f.contacts)
		t.Errorf("contact requests %s", b)
	}
}

// focused describes the element that has focus: its id, or else its tag and
// text.
const focused = `(() => { const e = document.activeElement; return e ? (e.id || e.tagName.toLowerCase() + ":" + e.textContent.trim().replace(/\s+/g, " ")) : ""; })()`

// press sends keys to whatever has focus, as a keyboard does: a raw key
// down, then the character, then the key up. (chromedp's default key down
// makes Chromium fire keydown alone, so a handled keydown, such as Enter
// following a link, does not suppress the keypress after it as it does
// for a real key: the keypress would reach wherever focus went.)
func (d pageDriver) press(name, keys string, opts ...chromedp.KeyOption) {
	d.t.Helper()
	raw := func(p *input.DispatchKeyEventParams) {
		if p.Type == input.DispatchKeyEventTypeKeyDown {
			p.Type = input.DispatchKeyEventTypeRawKeyDown
		}
	}
	d.step(name, chromedp.KeyEvent(keys, append(opts, raw)...))
}

// focusOn waits until the focused element, as focused describes it, is want.
func (d pageDriver) focusOn(name, want string) {
	d.t.Helper()
	if _, err := chromedp.Run(d.ctx, chromedp.Poll[bool](focused+` === `+strconv.Quote(want), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		got, _ := chromedp.Run(d.ctx, chromedp.Evaluate[string](focused))
		d.t.Fatalf("%s: focus on %q, want %q (%v)", name, got, want, err)
	}
}

// TestPageByKeyboard completes the practitioner's flow with the keyboard
// only: Tab through the page, Enter to submit, the error summary taking focus
// with links back to the field (GOV.UK's error pattern), Tab to "request
// contact" and Enter, Space on the watch button, and Shift+Tab back to the
// row a live notice added, activated with Space. No element is clicked.
func TestPageByKeyboard(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	d.step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))

	d.press("tab to the skip link", kb.Tab)
	d.focusOn("the skip link first", "a:Skip to main content")
	d.press("tab to the username", kb.Tab)
	d.focusOn("then the username", "username")
	d.press("submit empty", kb.Enter)
	d.focusOn("the error summary takes focus", "error-summary")
	if s := d.text("#error-summary-list"); !strings.Contains(s, "Enter your username") || !strings.Contains(s, "Enter your password") {
		t.Errorf("error summary %q", s)
	}
	d.press("tab to the first error", kb.Tab)
	d.focusOn("the summary's first link", "a:Enter your username")
	d.press("follow it", kb.Enter)
	d.focusOn("the link leads to the field", "username")
	d.press("type the username", "alice")
	d.press("tab to the password", kb.Tab)
	d.focusOn("the password", "password")
	d.press("type the password", "correct horse battery")
	d.press("sign in", kb.Enter)
	d.focusOn("signing in moves to the number", "nhs-number")

	d.press("type a wrong check digit", "999 000 0019")
	d.press("submit it", kb.Enter)
	d.focusOn("the error summary takes focus", "error-summary")
	if s := d.text("#error-summary-list"); !strings.Contains(s, "check it against the record") || strings.Contains(s, "8") {
		t.Errorf("error summary %q lacks the reason", s)
	}
	d.press("tab to the error", kb.Tab)
	d.press("follow it", kb.Enter)
	d.focusOn("the link leads to the number", "nhs-number")
	d.press("clear it", strings.Repeat(kb.Backspace, len("999 000 0019")))
	d.press("type a valid number", "999 000 0018")
	d.press("search", kb.Enter)
	d.waitFor("results", `document.querySelectorAll("#results-body tr").length === 1`)
	d.focusOn("results take focus", "results-title")

	d.press("tab to request contact", kb.Tab)
	d.focusOn("the school's button", "button:Request contact from Riverside Primary School")
	d.press("request contact with Enter", kb.Enter)
	d.focusOn("the answer takes the button's focus", "p:Request sent. Riverside Primary School will get back to you.")
	d.press("tab to the watch button", kb.Tab)
	d.focusOn("the watch button", "watch-button")
	d.press("watch with Space", " ")
	d.press("Space again while watching", " ") // ignored: one watch
	d.waitFor("the live notice", `document.getElementById("notices").textContent.includes("Elm Street Surgery is now involved")`)
	d.waitFor("the new row", `document.querySelectorAll("#results-body tr").length === 2`)
	d.focusOn("focus stays on the watch button", "watch-button")
	d.press("shift+tab back to the new row", kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift))
	d.focusOn("the GP's button", "button:Request contact from Elm Street Surgery")
	d.press("request contact with Space", " ")
	d.focusOn("the second answer takes focus", "p:Request sent. Elm Street Surgery will get back to you.")

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.contacts) != 2 || f.contacts[0]["nodeId"] != "node-school" || f.contacts[1]["nodeId"] != "node-gp" {
		t.Errorf("contact requests %v, want the school's then the GP's", f.contacts)
	}
	if f.watches != 1 {
		t.Errorf("%d watches opened, want 1", f.watches)
	}
}

// issuersDownMessage is what a node answers when 1 of its 3 token issuers
// answered.
var issuersDownMessage = node.IssuersUnavailableMessage(&node.IssuersError{Answered: 1, N: 3, T: 2})

// TestIssuersDownSaysSo: when too few token issuers answer, the page shows
// the node's plain sentence in the error summary and no results; once they
// answer again the same search works.
func TestIssuersDownSaysSo(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	d.signIn(url)
	f.mu.Lock()
	f.issuersDown = true
	f.mu.Unlock()
	d.step("search with two issuers down", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0018"), chromedp.Click(chromedp.CSS("#search-button")))
	d.waitFor("the error summary", `!document.getElementById("error-summary").hidden`)
	if got := d.text("#error-summary-list"); got != issuersDownMessage {
		t.Errorf("the page says %q, want the node's sentence %q", got, issuersDownMessage)
	}
	if n, _ := chromedp.Run(d.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#results-body tr").length`)); n != 0 {
		t.Errorf("%d result rows shown while no token could be made", n)
	}
	f.mu.Lock()
	f.issuersDown = false
	f.mu.Unlock()
	d.step("search again", chromedp.Click(chromedp.CSS("#search-button")))
	d.waitFor("results", `!document.getElementById("results").hidden && document.getElementById("results-summary").textContent !== ""`)
}

package stack

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/sealed"
)

// demoToken makes number's token for purpose as a practitioner's client at
// the demo's i-th node does (blind in the module, POST /v1/tokens/evaluate,
// combine): the test then holds the lookup key and the seal key.
func demoToken(t *testing.T, d *Demo, i int, number, purpose string) wasm.Token {
	t.Helper()
	ctx := context.Background()
	b, err := d.runtime.BlindThreshold(ctx, "nhs", []string{number})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"purpose": purpose, "blinded": []string{base64.StdEncoding.EncodeToString(b.Blinded[0])}})
	st, out := call(t, "POST", "http://"+d.Stacks[i].Addr.String()+"/v1/tokens/evaluate", d.PractitionerTokens[DemoAgencies[i].NodeID], string(body))
	var ev struct {
		Purpose, GroupKey string
		Epoch             uint32
		T                 int
		Partials          []struct {
			Issuer, PublicShare, Proof string
			Index                      uint16
			Evaluated                  []string
		}
	}
	if st != 200 || json.Unmarshal([]byte(out), &ev) != nil {
		t.Fatalf("evaluate: %d %s", st, out)
	}
	dec := func(s string) []byte {
		v, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ks := wasm.KeySet{Purpose: ev.Purpose, Epoch: ev.Epoch, T: ev.T, GroupKey: dec(ev.GroupKey)}
	var ps []wasm.Partial
	for _, p := range ev.Partials {
		ks.Shares = append(ks.Shares, wasm.PublicShare{Index: p.Index, NodeID: p.Issuer, Key: dec(p.PublicShare)})
		ps = append(ps, wasm.Partial{Index: p.Index, Evaluated: [][]byte{dec(p.Evaluated[0])}, Proof: dec(p.Proof)})
	}
	toks, err := d.runtime.Combine(ctx, b, ks, ps)
	if err != nil {
		t.Fatal(err)
	}
	return toks[0]
}

// secretForms are the ways a value could show in bytes: raw, hex, and
// base64 (standard and URL alphabets) at each of the three alignments,
// keeping only the characters that depend on the value's bytes alone.
func secretForms(v []byte) [][]byte {
	forms := [][]byte{v, []byte(hex.EncodeToString(v))}
	for off := range 3 {
		start, end := (8*off+5)/6, 8*(off+len(v))/6
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(append(make([]byte, off), v...))
			if end-start >= 4 {
				forms = append(forms, []byte(s[start:end]))
			}
		}
	}
	return forms
}

// leaks returns the first secret form found in hay, "" if none.
func leaks(hay []byte, secrets map[string][]byte) string {
	low := bytes.ToLower(hay)
	for name, v := range secrets {
		for _, f := range secretForms(v) {
			if bytes.Contains(hay, f) || len(f) > 8 && bytes.Contains(low, bytes.ToLower(f)) {
				return fmt.Sprintf("%s as %q", name, f)
			}
		}
	}
	return ""
}

// TestShieldedEntriesRevealNothing: a third node (city-ed) with the full
// replica, the person's lookup key and seal key learns of the shielded
// clinic only "a service that protects its patients' confidentiality, ask
// through northshire-csc": no form of the clinic's node id, agency name,
// category or public key is in its replica file, in what its entries open
// to under the seal key, or in its locate and lookup answers' entries; the
// broker, with its own node key, opens the clinic's identity, and the
// third node's key does not.
func TestShieldedEntriesRevealNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 20, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Shutdown(context.Background()) }()
	clinicAt := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == DemoShielded })
	brokerAt := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == DemoBroker })
	const third = 3 // city-ed: neither the clinic nor its broker
	clinic := DemoAgencies[clinicAt]
	person := slices.IndexFunc(d.People, func(p DemoPerson) bool { return slices.Contains(p.Shielded, DemoShielded) })
	if person < 0 || DemoAgencies[third].NodeID == DemoBroker || DemoAgencies[third].NodeID == DemoShielded {
		t.Fatalf("fixture: person %d, third node %s", person, DemoAgencies[third].NodeID)
	}
	secrets := map[string][]byte{
		"clinic node id":  []byte(clinic.NodeID),
		"clinic agency":   []byte(clinic.Agency),
		"clinic category": []byte(clinic.Category),
		"clinic key":      d.Stacks[clinicAt].config.Credentials.PrivateKey.Public().(ed25519.PublicKey),
	}
	for name, v := range secrets { // the search sees a leak in any form
		for _, hay := range [][]byte{append([]byte("x"), v...), []byte(hex.EncodeToString(v)), []byte(base64.StdEncoding.EncodeToString(append([]byte{1, 2}, v...)))} {
			if leaks(hay, map[string][]byte{name: v}) == "" {
				t.Fatalf("the search does not see the %s in %q", name, hay)
			}
		}
	}
	tok := demoToken(t, d, third, d.People[person].NHSNumber, "safeguarding")
	thirdURL := "http://" + d.Stacks[third].Addr.String()

	// Its locate answer: one shielded holder, brokered by northshire-csc.
	st, body := call(t, "POST", thirdURL+"/v1/locate", d.PractitionerTokens[DemoAgencies[third].NodeID],
		fmt.Sprintf(`{"nhsNumber":%q,"purpose":"safeguarding"}`, d.People[person].NHSNumber))
	var res node.LocateResult
	if st != 200 || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("locate: %d %s", st, body)
	}
	var shielded []node.HolderView
	for _, h := range res.Holders {
		if h.Shielded {
			shielded = append(shielded, h)
		} else if h.NodeID == DemoBroker {
			t.Errorf("the broker is listed as a holder itself: %+v", h)
		}
	}
	if len(shielded) != 1 || shielded[0].Broker != DemoBroker || shielded[0].BrokerAgency != DemoAgencies[brokerAt].Agency ||
		shielded[0].Agency != node.ShieldedService || shielded[0].NodeID != "" || shielded[0].Category != "" || shielded[0].Shield == "" {
		t.Fatalf("shielded holders %+v in %s", shielded, body)
	}
	if l := leaks([]byte(body), secrets); l != "" {
		t.Errorf("the locate answer holds the %s", l)
	}

	// Its lookup answer's entries, and what they open to with the seal key.
	st, body = call(t, "POST", thirdURL+"/v1/lookup", d.PractitionerTokens[DemoAgencies[third].NodeID],
		fmt.Sprintf(`{"lookupKey":%q,"purpose":"safeguarding"}`, base64.RawURLEncoding.EncodeToString(tok.LookupKey[:])))
	var lr struct {
		Entries []string `json:"entries"`
	}
	if st != 200 || json.Unmarshal([]byte(body), &lr) != nil || len(lr.Entries) == 0 {
		t.Fatalf("lookup: %d %s", st, body)
	}
	keys := d.Stacks[third].Agent
	opened := 0
	for _, s := range lr.Entries {
		enc, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if l := leaks(enc, secrets); l != "" {
			t.Errorf("an entry holds the %s", l)
		}
		e, err := locator.DecodeEntry(enc)
		if err != nil {
			t.Fatal(err)
		}
		h, err := e.Open(locator.SealKey(tok.SealKey), keys)
		if err != nil {
			t.Fatalf("an entry does not open with the seal key: %v", err)
		}
		if h.NodeID == DemoShielded {
			t.Fatal("an entry names the clinic")
		}
		if h.Broker == "" {
			continue
		}
		opened++
		view := fmt.Sprintf("%+v", h)
		if l := leaks(append([]byte(view), h.Inner...), secrets); l != "" {
			t.Errorf("the opened shielded entry holds the %s", l)
		}
		// Only the broker's key opens the clinic's identity.
		thirdKey := d.Stacks[third].config.Credentials.PrivateKey
		if _, err := sealed.OpenShield(thirdKey, DemoBroker, e.Lookup, e.EntryPub, h.Inner, func(id string) (ed25519.PublicKey, bool) { return keys.NodeKey(id) }); err == nil {
			t.Error("the third node's key opened the shielded identity")
		}
		brokerKey := d.Stacks[brokerAt].config.Credentials.PrivateKey
		id, err := sealed.OpenShield(brokerKey, DemoBroker, e.Lookup, e.EntryPub, h.Inner, func(id string) (ed25519.PublicKey, bool) { return keys.NodeKey(id) })
		if err != nil || id.NodeID != DemoShielded || id.Category != clinic.Category {
			t.Errorf("the broker opened %+v, %v", id, err)
		}
	}
	if opened != 1 {
		t.Fatalf("%d shielded entries under the person's key, want 1", opened)
	}

	// Its replica, byte for byte on disk, once it holds every entry.
	if err := waitFor(context.Background(), 30*time.Second, func() bool { return d.Stacks[third].Agent.Store().Len() >= d.Entries }); err != nil {
		t.Fatalf("the third node's replica: %v", err)
	}
	n := 0
	if err := d.Stacks[third].Agent.Store().Range(func(e *locator.Entry) bool {
		n++
		if l := leaks(e.Encode(), secrets); l != "" {
			t.Errorf("replica entry %s holds the %s", e.ID(), l)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(d.Stacks[third].config.Node.DataDir, "locator.db"))
	if err != nil {
		t.Fatal(err)
	}
	if l := leaks(raw, secrets); l != "" {
		t.Errorf("the replica file holds the %s", l)
	}
	t.Logf("%d replica entries searched; %d shielded entry opened", n, opened)

	// The clinic never pushed its entries itself: its broker published
	// every one (entries-relayed at the broker, without a subject), and
	// they reached the clinic's own replica through the federation.
	want := 0
	for _, p := range d.People {
		want += len(p.Shielded) * len(clinic.Purposes)
	}
	relayed := 0
	for _, m := range auditLines(t, d.Stacks[brokerAt], "entries-relayed") {
		if m["peer"] != DemoShielded || m["outcome"] != "ok" || m["subjects"] != nil {
			t.Errorf("broker audit line %v", m)
		}
		c, _ := m["count"].(float64)
		relayed += int(c)
	}
	if relayed != want || want == 0 {
		t.Errorf("the broker published %d of the clinic's entries, want %d", relayed, want)
	}
	if err := waitFor(context.Background(), 30*time.Second, func() bool { return d.Stacks[clinicAt].Agent.Store().Len() >= d.Entries }); err != nil {
		t.Errorf("the clinic's replica did not get its own entries back: %v", err)
	}
}

// auditLines returns the audit events of stack s whose action is one of
// actions, as JSON objects.
func auditLines(t *testing.T, s *Stack, actions ...string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(s.Audit.Path())
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(raw, []byte("\n")) {
		var l struct {
			Event map[string]any `json:"event"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		if a, _ := l.Event["action"].(string); slices.Contains(actions, a) {
			out = append(out, l.Event)
		}
	}
	return out
}

// contactListsAll is GET /v1/contact-requests with the broker's list.
type contactListsAll struct {
	Received, Sent, Relayed []node.ContactView
}

func listAll(t *testing.T, d *Demo, i int) contactListsAll {
	t.Helper()
	st, body := call(t, "GET", "http://"+d.Stacks[i].Addr.String()+"/v1/contact-requests", d.Tokens[DemoAgencies[i].NodeID], "")
	var l contactListsAll
	if st != 200 || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("contact requests at %s: %d %s", DemoAgencies[i].NodeID, st, body)
	}
	return l
}

// TestShieldedContactThroughBroker drives contact requests for the demo's
// shielded clinic through the API of real nodes: the requester (city-ed)
// asks through northshire-csc with what its locate answer gave it; the
// broker relays to the clinic, keeping nothing about the person; the
// clinic's staff answer one request without being named and one with
// consent; the requester is named the clinic only after that consent.
// Every step is audited on its side (the broker's lines carry no
// subject). A request to the wrong broker, or straight to the clinic, is
// refused the same way, before anything is stored; the broker's relays
// survive a restart, and once its broker_for no longer names the clinic it
// refuses to relay.
func TestShieldedContactThroughBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 20, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Shutdown(context.Background()) }()
	clinicAt := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == DemoShielded })
	brokerAt := slices.IndexFunc(DemoAgencies, func(a DemoAgency) bool { return a.NodeID == DemoBroker })
	const asker = 3 // city-ed
	askerID := DemoAgencies[asker].NodeID
	url := func(i int) string { return "http://" + d.Stacks[i].Addr.String() }
	person := slices.IndexFunc(d.People, func(p DemoPerson) bool { return slices.Contains(p.Shielded, DemoShielded) })
	num := d.People[person].NHSNumber

	st, body := call(t, "POST", url(asker)+"/v1/locate", d.PractitionerTokens[askerID], fmt.Sprintf(`{"nhsNumber":%q,"purpose":"safeguarding"}`, num))
	var res node.LocateResult
	if st != 200 || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("locate: %d %s", st, body)
	}
	i := slices.IndexFunc(res.Holders, func(h node.HolderView) bool { return h.Shielded })
	if i < 0 {
		t.Fatalf("no shielded holder in %s", body)
	}
	h := res.Holders[i]
	ask := func(nodeID, message string) (int, string) {
		b, _ := json.Marshal(map[string]string{"nodeId": nodeID, "purpose": "safeguarding", "nhsNumber": num, "entryKey": h.EntryKey, "shield": h.Shield, "message": message})
		return call(t, "POST", url(asker)+"/v1/contact-requests", d.PractitionerTokens[askerID], string(b))
	}

	// Refusals: the wrong broker, and the clinic itself, the same way; and
	// a malformed shield. Nothing is stored anywhere.
	for _, tc := range []struct {
		name, nodeID, shield string
		status               int
		code                 string
	}{
		{"a node that is nobody's broker", "harbour-gp", h.Shield, 403, "not_broker"},
		{"the clinic itself", DemoShielded, h.Shield, 403, "not_broker"},
		{"a shield cut short", DemoBroker, h.Shield[:40], 403, "not_broker"},
		{"a shield that is not base64", DemoBroker, "!!", 400, "invalid_shield"},
	} {
		b, _ := json.Marshal(map[string]string{"nodeId": tc.nodeID, "purpose": "safeguarding", "nhsNumber": num, "entryKey": h.EntryKey, "shield": tc.shield})
		st, body := call(t, "POST", url(asker)+"/v1/contact-requests", d.PractitionerTokens[askerID], string(b))
		if st != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || strings.Contains(body, DemoShielded) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	// Straight to the clinic, without the broker: refused the same way for
	// a person it holds and one it does not, so that nobody can probe it.
	notHeld := slices.IndexFunc(d.People, func(p DemoPerson) bool { return len(p.Shielded) == 0 })
	var direct []string
	for _, n := range []string{num, d.People[notHeld].NHSNumber} {
		b, _ := json.Marshal(map[string]string{"nodeId": DemoShielded, "purpose": "safeguarding", "nhsNumber": n})
		st, body := call(t, "POST", url(asker)+"/v1/contact-requests", d.PractitionerTokens[askerID], string(b))
		direct = append(direct, fmt.Sprint(st, " ", body))
	}
	if direct[0] != direct[1] || !strings.HasPrefix(direct[0], "403 ") || !strings.Contains(direct[0], `"code":"not_broker"`) {
		t.Errorf("direct requests to the clinic (held, not held): %q", direct)
	}
	if l := listAll(t, d, asker); len(l.Sent) != 0 {
		t.Fatalf("refused requests were kept: %+v", l.Sent)
	}
	if l := listAll(t, d, clinicAt); len(l.Received) != 0 {
		t.Fatalf("the clinic kept %+v", l.Received)
	}

	// Two requests through the broker.
	var ids []string
	for _, msg := range []string{"first: please pass a message on", "second: may we speak to you?"} {
		st, body := ask(DemoBroker, msg)
		var ans node.ContactAnswer
		if st != 200 || json.Unmarshal([]byte(body), &ans) != nil || ans.Status != "pending" || ans.Broker != DemoAgencies[brokerAt].Agency || strings.Contains(body, DemoShielded) {
			t.Fatalf("request through the broker: %d %s", st, body)
		}
		ids = append(ids, ans.ID)
	}
	sent := listAll(t, d, asker).Sent
	for _, v := range sent {
		if v.State != "new" || v.NodeID != "" || v.Agency != node.ShieldedService || v.Via != DemoAgencies[brokerAt].Agency || v.Broker != DemoBroker {
			t.Fatalf("the asker's request: %+v", v)
		}
	}
	relayed := listAll(t, d, brokerAt).Relayed
	if len(relayed) != 2 {
		t.Fatalf("the broker relayed %+v", relayed)
	}
	for _, v := range relayed {
		if v.Direction != "relayed" || v.NodeID != askerID || v.State != "new" || v.LocalID != "" {
			t.Fatalf("relayed %+v", v)
		}
	}
	if raw, _ := json.Marshal(relayed); strings.Contains(string(raw), DemoShielded) {
		t.Fatalf("the broker's list names the clinic: %s", raw)
	}
	inbox := listAll(t, d, clinicAt).Received
	if len(inbox) != 2 {
		t.Fatalf("the clinic's inbox %+v", inbox)
	}
	byMessage := map[string]node.ContactView{}
	for _, v := range inbox {
		if v.State != "new" || v.NodeID != askerID || v.Agency != DemoAgencies[asker].Agency || v.Via != DemoAgencies[brokerAt].Agency || v.LocalID == "" {
			t.Fatalf("the clinic's request %+v", v)
		}
		byMessage[v.Message] = v
	}

	// Consent applies to brokered requests only, and a decline names
	// nobody.
	clinicURL, clinicTok := url(clinicAt), d.Tokens[DemoShielded]
	if st, body := call(t, "POST", clinicURL+"/v1/contact-requests/"+byMessage["first: please pass a message on"].ID+"/decline", clinicTok, `{"reason":"x","consent":true}`); st != 400 {
		t.Fatalf("decline with consent: %d %s", st, body)
	}
	// The first answered without naming the clinic, the second with consent.
	const unnamed = "We have passed your message on; please wait to be contacted."
	const named = "Alex Doe, clinic safeguarding lead, 01632 960777 (synthetic)"
	if st, body := call(t, "POST", clinicURL+"/v1/contact-requests/"+byMessage["first: please pass a message on"].ID+"/answer", clinicTok, fmt.Sprintf(`{"contact":%q}`, unnamed)); st != 200 || !strings.Contains(body, `"delivery":"delivered"`) {
		t.Fatalf("answer without consent: %d %s", st, body)
	}
	if st, body := call(t, "POST", clinicURL+"/v1/contact-requests/"+byMessage["second: may we speak to you?"].ID+"/answer", clinicTok, fmt.Sprintf(`{"contact":%q,"consent":true}`, named)); st != 200 || !strings.Contains(body, `"delivery":"delivered"`) {
		t.Fatalf("answer with consent: %d %s", st, body)
	}
	sentBy := map[string]node.ContactView{}
	for _, v := range listAll(t, d, asker).Sent {
		sentBy[v.ID] = v
	}
	if v := sentBy[ids[0]]; v.State != "answered" || v.Contact != unnamed || v.NodeID != "" || v.Agency != node.ShieldedService || v.Consent {
		t.Errorf("the unnamed answer at the asker: %+v", v)
	}
	if v := sentBy[ids[1]]; v.State != "answered" || v.Contact != named || v.NodeID != DemoShielded || v.Agency != DemoAgencies[clinicAt].Agency || !v.Consent {
		t.Errorf("the named answer at the asker: %+v", v)
	}
	for _, v := range listAll(t, d, brokerAt).Relayed {
		if v.State != "answered" || v.Delivery != "delivered" {
			t.Errorf("relayed after the answers: %+v", v)
		}
	}
	// A third, declined: the reason reaches the asker through the broker,
	// the clinic unnamed.
	st, body = ask(DemoBroker, "third: please call us")
	var third node.ContactAnswer
	if st != 200 || json.Unmarshal([]byte(body), &third) != nil {
		t.Fatalf("third request: %d %s", st, body)
	}
	var thirdAtClinic string
	for _, v := range listAll(t, d, clinicAt).Received {
		if v.Message == "third: please call us" {
			thirdAtClinic = v.ID
		}
	}
	const reason = "We cannot help with this request."
	if st, body := call(t, "POST", clinicURL+"/v1/contact-requests/"+thirdAtClinic+"/decline", clinicTok, fmt.Sprintf(`{"reason":%q}`, reason)); st != 200 || !strings.Contains(body, `"delivery":"delivered"`) {
		t.Fatalf("decline: %d %s", st, body)
	}
	for _, v := range listAll(t, d, asker).Sent {
		if v.ID == third.ID && (v.State != "declined" || v.Reason != reason || v.NodeID != "" || v.Agency != node.ShieldedService) {
			t.Errorf("the declined request at the asker: %+v", v)
		}
	}

	// Audited on every side; the broker's lines name no subject.
	if got := auditLines(t, d.Stacks[asker], "contact-request-sent", "contact-answer-received"); len(got) < 4 {
		t.Errorf("the asker audited %v", got)
	}
	if got := auditLines(t, d.Stacks[clinicAt], "contact-request-received", "contact-request-answered", "contact-request-declined", "contact-answer-sent"); len(got) != 9 {
		t.Errorf("the clinic audited %v", got)
	}
	brokerLines := auditLines(t, d.Stacks[brokerAt], "contact-request-relayed", "contact-answer-relayed", "contact-answer-received")
	if len(brokerLines) < 6 {
		t.Errorf("the broker audited %v", brokerLines)
	}
	for _, m := range brokerLines {
		if m["subjects"] != nil || m["record"] != nil {
			t.Errorf("a broker audit line names the person: %v", m)
		}
	}

	// The broker restarts with a broker_for that no longer names the
	// clinic: its relays are still there, and it relays no more.
	cfg := d.Stacks[brokerAt].config
	if err := d.Stacks[brokerAt].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Node.BrokerFor = []string{"another-service"}
	cfg.Join = []string{d.Stacks[2].Agent.GossipAddr()}
	s, err := StartStack(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.Stacks[brokerAt] = s
	if l := listAll(t, d, brokerAt).Relayed; len(l) != 3 || l[0].State != "declined" || l[1].State != "answered" {
		t.Fatalf("the broker's relays after its restart: %+v", l)
	}
	if err := waitFor(context.Background(), 20*time.Second, func() bool {
		st, _ := ask(DemoBroker, "third")
		return st == 403
	}); err != nil {
		t.Fatal("the broker relays for a service no longer in its broker_for")
	}
	if l := listAll(t, d, clinicAt).Received; len(l) != 3 {
		t.Fatalf("the clinic got a request its broker should have refused: %+v", l)
	}
	if got := auditLines(t, d.Stacks[brokerAt], "contact-request-relayed"); !slices.ContainsFunc(got, func(m map[string]any) bool { return m["outcome"] == "denied" }) {
		t.Errorf("the broker's refusal is not audited: %v", got)
	}
}

// TestShieldedHelp: the demo's welcome says where to find the shielded
// clinic's person (a number it holds, which the suggested asker does not),
// whom to ask through, and where to answer; it says nothing when the clinic
// or its broker is stopped.
func TestShieldedHelp(t *testing.T) {
	d := &Demo{}
	for i := range DemoAgencies {
		d.Stacks = append(d.Stacks, &Stack{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8470 + i}})
	}
	for i := range 20 {
		d.People = append(d.People, DemoPerson{NHSNumber: fmt.Sprintf("999%07d", i), Holders: demoHolders(i), Shielded: demoShieldedHolders(i)})
	}
	var b strings.Builder
	d.printShieldedHelp(&b)
	out := b.String()
	i := slices.IndexFunc(d.People, func(p DemoPerson) bool {
		return slices.Contains(p.Shielded, DemoShielded) && !slices.Contains(p.Holders, DemoAgencies[3].NodeID)
	})
	for _, want := range []string{DemoAgencies[4].Agency + " (http://127.0.0.1:8474/)", "ask through " + DemoAgencies[0].Agency, display(d.People[i].NHSNumber),
		DemoAgencies[3].Agency + "'s page (http://127.0.0.1:8473/)", "consent to be named"} {
		if !strings.Contains(out, want) {
			t.Errorf("the welcome lacks %q:\n%s", want, out)
		}
	}
	d.Down = []string{DemoBroker}
	b.Reset()
	if d.printShieldedHelp(&b); b.Len() != 0 {
		t.Errorf("with the broker stopped the welcome says %q", b.String())
	}
}

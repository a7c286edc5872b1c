package stack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestDemoFederation runs the real demo: four enrolled nodes on loopback
// with memberlist, mutual-TLS peer calls, three token issuers whose 2-of-3
// keys a DKG made at start, and checks the practitioner flow end to end
// through the API.
func TestDemoFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	start := time.Now()
	p := auth.TestArgon2Params
	cache := t.TempDir()
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 20, Argon2: &p, WasmCacheDir: cache,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	// The demo keeps the compiled module in the directory it is given.
	if entries, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "*")); len(entries) == 0 {
		t.Error("no compiled code in DemoConfig.WasmCacheDir")
	}
	defer func() {
		if err := d.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// The test's own client connections are the test's to close; every
		// goroutine the nodes started has an owner that Shutdown waited for.
		http.DefaultClient.CloseIdleConnections()
		testutil.VerifyNone(t)
	}()
	t.Logf("demo up in %v with %d entries", time.Since(start), d.Entries)
	url := func(i int) string { return "http://" + d.Stacks[i].Addr.String() }
	csc, school, gp := DemoAgencies[0].NodeID, DemoAgencies[1].NodeID, DemoAgencies[2].NodeID

	// Person 0 is known to all four: csc sees the three others.
	st, body := call(t, "POST", url(0)+"/v1/locate", d.PractitionerTokens[csc], `{"nhsNumber":"`+d.People[0].NHSNumber+`","purpose":"safeguarding"}`)
	var res node.LocateResult
	json.Unmarshal([]byte(body), &res)
	if st != 200 || !res.SelfHolds || len(res.Holders) != 3 {
		t.Fatalf("locate: %d %s", st, body)
	}
	// The school asks for direct-care: refused (its descriptor lacks it).
	if st, body := call(t, "POST", url(1)+"/v1/locate", d.PractitionerTokens[school], `{"nhsNumber":"`+d.People[0].NHSNumber+`","purpose":"direct-care"}`); st != 403 {
		t.Fatalf("school direct-care: %d %s", st, body)
	}
	// Signed in to its node, the school's practitioner is told the school's
	// name and offered safeguarding only, the CSC's both purposes; an
	// operator no purpose (the practitioner role alone looks up).
	for _, tc := range []struct {
		node        int
		user, agent string
		want        []string
	}{
		{1, node.RolePractitioner, DemoAgencies[1].Agency, []string{"safeguarding"}},
		{0, node.RolePractitioner, DemoAgencies[0].Agency, []string{"direct-care", "safeguarding"}},
		{1, node.RoleOperator, DemoAgencies[1].Agency, []string{}},
	} {
		res, err := http.Post(url(tc.node)+"/v1/session", "application/json", strings.NewReader(`{"username":"`+tc.user+`","password":"`+DemoPassword+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var sess auth.SessionResponse
		err = json.NewDecoder(res.Body).Decode(&sess)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || sess.Agency.Name != tc.agent || sess.Agency.NodeID != DemoAgencies[tc.node].NodeID || !slices.Equal(sess.Purposes, tc.want) {
			t.Errorf("%s at %s: %d %+v %v; want %s offered %v", tc.user, DemoAgencies[tc.node].NodeID, res.StatusCode, sess.Agency, sess.Purposes, tc.agent, tc.want)
		}
	}
	// Contact request from csc to the GP, over mutual TLS; the GP records it.
	st, body = call(t, "POST", url(0)+"/v1/contact-requests", d.PractitionerTokens[csc], `{"nodeId":"`+gp+`","purpose":"safeguarding","lookupKey":"`+res.LookupKey+`","message":"please call"}`)
	if st != 200 || !strings.Contains(body, `"accepted"`) || !strings.Contains(body, "duty desk") {
		t.Fatalf("contact: %d %s", st, body)
	}
	if st, body := call(t, "GET", url(2)+"/v1/contact-requests", d.Tokens[gp], ""); st != 200 || !strings.Contains(body, `"nodeId":"`+csc+`","agency"`) {
		t.Fatalf("gp's received requests: %d %s", st, body)
	}

	// Person 4 is known to nobody: csc watches, then the GP registers them.
	nobody := d.People[4]
	if len(nobody.Holders) != 0 {
		t.Fatalf("fixture: person 4 has holders %v", nobody.Holders)
	}
	st, body = call(t, "POST", url(0)+"/v1/locate", d.PractitionerTokens[csc], `{"nhsNumber":"`+nobody.NHSNumber+`","purpose":"safeguarding"}`)
	res = node.LocateResult{}
	json.Unmarshal([]byte(body), &res)
	if st != 200 || len(res.Holders) != 0 {
		t.Fatalf("locate nobody: %d %s", st, body)
	}
	ws := "ws" + strings.TrimPrefix(url(0), "http") + "/v1/watch"
	conn, _, err := websocket.DefaultDialer.Dial(ws, http.Header{"Authorization": {"Bearer " + d.PractitionerTokens[csc]}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	conn.WriteJSON(map[string]string{"watch": res.LookupKey})
	var nt node.Notice
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "watching" {
		t.Fatalf("watch ack: %v %+v", err, nt)
	}
	if st, body := call(t, "POST", url(2)+"/v1/records", d.Tokens[gp], `{"localId":"live-1","nhsNumber":"`+nobody.NHSNumber+`"}`); st != 201 {
		t.Fatalf("gp create: %d %s", st, body)
	}
	sent := time.Now()
	if err := conn.ReadJSON(&nt); err != nil || nt.Type != "involved" || nt.LookupKey != res.LookupKey {
		t.Fatalf("live notice: %v %+v", err, nt)
	}
	t.Logf("live notice after %v", time.Since(sent))
	st, body = call(t, "POST", url(0)+"/v1/locate", d.PractitionerTokens[csc], `{"nhsNumber":"`+nobody.NHSNumber+`","purpose":"safeguarding"}`)
	if st != 200 || !strings.Contains(body, `"nodeId":"`+gp+`"`) {
		t.Fatalf("after live add: %d %s", st, body)
	}

	issuerFams := checkDemoMetrics(t, url(0), csc, true)
	schoolFams := checkDemoMetrics(t, url(1), school, false) // not a token issuer

	// Every series the Grafana dashboard (docs/grafana) queries is served
	// (issuer evaluations by the issuer only), bar memberlist's that
	// appear only once memberlist reports the event (suspicion, death).
	dash, err := os.ReadFile("../../docs/grafana/signpost.json")
	if err != nil {
		t.Fatal(err)
	}
	eventOnly := map[string]bool{"memberlist_msg_suspect": true, "memberlist_msg_dead": true, "memberlist_degraded_probe": true}
	for _, name := range regexp.MustCompile(`\b(?:signpost|memberlist)_[A-Za-z_]+`).FindAllString(string(dash), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		if name == "signpost_node" || eventOnly[name] { // signpost_node: the dashboard's uid
			continue
		}
		if !issuerFams[name] || !schoolFams[name] && name != "signpost_issuer_evaluations_total" {
			t.Errorf("the dashboard queries %s, which the demo does not serve", name)
		}
	}
}

// checkDemoMetrics scrapes a demo node's /metrics, checks that the
// federation's, memberlist's, the replica's and the node's own series are
// there, memberlist's for this node only, and returns the family names.
func checkDemoMetrics(t *testing.T, url, nodeID string, issuer bool) map[string]bool {
	t.Helper()
	// memberlist_probeNode appears with the node's first probe, which
	// memberlist's own timer starts at a random point of its interval: a
	// demo that came up fast may not have probed yet. Wait for that event
	// (memberlist's, not this test's), within a bound.
	var body string
	var fams map[string]bool
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		st, b := call(t, "GET", url+"/metrics", "", "")
		if st != 200 {
			t.Fatalf("metrics: %d", st)
		}
		body, fams = b, metricFamilies(b)
		if fams["memberlist_probeNode"] {
			break
		}
		select {
		case <-tick.C:
			continue
		case <-deadline:
		}
		break
	}
	want := []string{
		"signpost_federation_members", "signpost_federation_sent_bytes_total", "signpost_federation_antientropy_sessions_total",
		"signpost_federation_outbox_messages",
		"memberlist_node_instances", "memberlist_probeNode", "memberlist_gossip", "memberlist_msg_alive",
		"signpost_locator_entries", "signpost_locator_accepted_total", "signpost_locator_rejected_total",
		"signpost_http_requests_total", "signpost_watchers", "signpost_ready",
		"go_goroutines", "process_resident_memory_bytes",
	}
	for _, name := range want {
		if !fams[name] {
			t.Errorf("%s /metrics lacks %s", nodeID, name)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "memberlist_") && !strings.Contains(line, `node="`+nodeID+`"`) {
			t.Errorf("%s /metrics has another node's series: %s", nodeID, line)
		}
	}
	for _, line := range []string{"signpost_federation_members " + strconv.Itoa(len(DemoAgencies)-1), "signpost_ready 1"} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("%s /metrics lacks %q", nodeID, line)
		}
	}
	for _, series := range []string{`memberlist_node_instances{node="` + nodeID + `",node_state="alive"} `, `signpost_locator_rejected_total{reason="stale"} `} {
		if !strings.Contains(body, "\n"+series) {
			t.Errorf("%s /metrics lacks %s", nodeID, series)
		}
	}
	if ok := regexp.MustCompile(`\nsignpost_issuer_evaluations_total\{outcome="ok",purpose="safeguarding"\} [1-9]`).MatchString(body); ok != issuer {
		t.Errorf("%s: evaluations counted %v, want %v (issuer)", nodeID, ok, issuer)
	}
	if t.Failed() {
		t.Logf("%s /metrics:\n%s", nodeID, body)
	}
	return fams
}

// metricFamilies returns the names of the families in a text exposition.
func metricFamilies(body string) map[string]bool {
	out := make(map[string]bool)
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

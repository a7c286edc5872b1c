package stack

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
)

// wire records everything the browser sends and receives on the wire: each
// request's URL, headers and body, and each WebSocket frame either way.
type wire struct {
	mu  sync.Mutex
	all []string
}

func (w *wire) listen(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		var s string
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b, _ := json.Marshal(e.Request.Headers)
			s = e.Request.Method + " " + e.Request.URL + " " + string(b)
			for _, p := range e.Request.PostDataEntries {
				s += " " + string(p.Bytes)
			}
		case *network.EventRequestWillBeSentExtraInfo:
			b, _ := json.Marshal(e.Headers)
			s = "headers " + string(b)
		case *network.EventWebSocketCreated:
			s = "ws " + e.URL
		case *network.EventWebSocketFrameSent:
			s = "ws-sent " + string(e.Response.PayloadData)
		case *network.EventWebSocketFrameReceived:
			s = "ws-received " + string(e.Response.PayloadData)
		default:
			return
		}
		w.mu.Lock()
		w.all = append(w.all, s)
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (w *wire) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.all)
}

// sessionClient signs in to base as a demo user with a cookie, as the page
// does, for the API calls a practitioner's page makes.
func sessionClient(t *testing.T, base, user string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.Post(base+"/v1/session", "application/json", strings.NewReader(`{"username":"`+user+`","password":"`+DemoPassword+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("sign in at %s: %d", base, res.StatusCode)
	}
	return c
}

func listWatches(t *testing.T, c *http.Client, base string) []node.WatchView {
	t.Helper()
	res, err := c.Get(base + "/v1/watches")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Watches []node.WatchView }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /v1/watches: %d %v", res.StatusCode, err)
	}
	return out.Watches
}

// TestStoredWatchEndToEnd drives the practitioner page of a real demo
// federation in headless Chromium at 320 px: a practitioner at the CSC
// watches a person; "My watches" names them by the last four digits of the
// number, which come from this browser's local storage; the watch survives
// a reload; the page is closed and the CSC's node restarts; the emergency
// department, which held nothing for the person, registers them; the
// CSC's node stores that notice with no page open; the page, opened again,
// shows the watch and the notice with its time and whom it is about. The
// number never appears in any request, header or WebSocket frame. axe-core
// finds no violation on the watches state, nothing is wider than the
// window, and a screenshot is saved.
func TestStoredWatchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes and a browser")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 20, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Shutdown(context.Background()) }()
	csc, gp, ed := DemoAgencies[0].NodeID, DemoAgencies[2].NodeID, DemoAgencies[3].NodeID
	var person DemoPerson
	for _, p := range d.People {
		if slices.Contains(p.Holders, csc) && slices.Contains(p.Holders, gp) && !slices.Contains(p.Holders, ed) {
			person = p
			break
		}
	}
	if person.NHSNumber == "" {
		t.Fatal("the demo has no person held by the CSC and the GP but not the ED")
	}
	last4 := person.NHSNumber[6:]
	cscURL := func() string { return "http://" + d.Stacks[0].Addr.String() }
	edURL := "http://" + d.Stacks[3].Addr.String()

	ctx := e2eBrowser(t)
	var w wire
	w.listen(t, ctx)
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	waitFor := func(name, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({status: document.getElementById("status").textContent, errors: document.getElementById("error-summary-list").textContent, watches: document.getElementById("watches").textContent, notices: document.getElementById("notices").textContent})`))
			t.Fatalf("waiting for %s: %v; page state %s", name, err, state)
		}
	}
	signIn := func() {
		t.Helper()
		step("open the page", chromedp.Navigate(cscURL()+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
		step("sign in",
			chromedp.SendKeys(chromedp.CSS("#username"), "practitioner"),
			chromedp.SendKeys(chromedp.CSS("#password"), DemoPassword),
			chromedp.Click(chromedp.CSS("#signin-button")),
			chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	}
	mine := `document.getElementById("watches-list").textContent`

	step("a 320 px window", chromedp.EmulateViewport(320, 800))
	signIn()
	step("search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), display(person.NHSNumber)), chromedp.Click(chromedp.CSS("#search-button")))
	waitFor("results", `document.querySelectorAll("#results-body tr").length > 0`)
	step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	waitFor("my watch", mine+`.includes("NHS number ending `+last4+`") && `+mine+`.includes("No agency has become involved")`)
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("signpost.watchLabels.practitioner")`))
	if err != nil {
		t.Fatal(err)
	}
	var byID map[string]string
	if err := json.Unmarshal([]byte(labels), &byID); err != nil || len(byID) != 1 {
		t.Fatalf("local storage holds %q (%v), want one watch's last four digits", labels, err)
	}
	var watchID string
	for id, l := range byID {
		watchID = id
		if l != last4 {
			t.Fatalf("local storage keeps %q for the watch, want %q", l, last4)
		}
	}

	// A reload: the node still has the watch, the browser its digits.
	step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	waitFor("my watch after the reload", mine+`.includes("NHS number ending `+last4+`")`)

	// The page is closed; the CSC's node restarts (joining the GP's
	// gossip address, as the first node of the demo must) on its address
	// (a page's local storage is its origin's: a node on a new port is
	// another site to the browser); then the ED registers the person while
	// no page is open.
	step("close the page", chromedp.Navigate("about:blank"))
	cfg := d.Stacks[0].config
	cfg.Node.Listen = d.Stacks[0].Addr.String()
	if err := d.Stacks[0].Shutdown(context.Background()); err != nil {
		t.Fatalf("stop %s: %v", csc, err)
	}
	cfg.Join = []string{d.Stacks[2].Agent.GossipAddr()}
	s, err := StartStack(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart %s: %v", csc, err)
	}
	d.Stacks[0] = s
	if st, body := call(t, "POST", edURL+"/v1/records", d.Tokens[ed], `{"localId":"watch-e2e-1","nhsNumber":"`+person.NHSNumber+`"}`); st != 201 {
		t.Fatalf("ED create: %d %s", st, body)
	}
	api := sessionClient(t, cscURL(), "practitioner")
	var stored []node.WatchView
	deadline := time.Now().Add(60 * time.Second)
	for {
		stored = listWatches(t, api, cscURL())
		if len(stored) == 1 && len(stored[0].Notices) > 0 || time.Now().After(deadline) {
			break
		}
		// The ED's entry reaches the CSC's replica by gossip: poll the
		// store, as a page would on its return.
		<-time.After(200 * time.Millisecond)
	}
	if len(stored) != 1 || stored[0].ID != watchID || len(stored[0].Notices) == 0 || stored[0].Notices[0].Type != "involved" {
		t.Fatalf("the CSC's node stored %+v, want the watch %s with the ED's notice", stored, watchID)
	}
	at := stored[0].Notices[0].At

	// The page opens again and shows the watch and the notice, with its
	// time and whom it is about.
	signIn()
	when, err := chromedp.Run(ctx, chromedp.Evaluate[string](`new Date(`+strconv.Quote(at.Format(time.RFC3339Nano))+`).toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" })`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor("the stored notice", mine+`.includes(`+strconv.Quote(when+" — NHS number ending "+last4+": Another agency became involved.")+`) && document.getElementById("watches-summary").textContent.includes("1 notice is new")`)
	waitFor("its time", `document.querySelector("#watches-list time").dateTime === `+strconv.Quote(at.Format(time.RFC3339Nano)))

	// Accessible and no wider than the window in this state.
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, innerWidth]`))
	if err != nil || widths[1] != 320 || widths[0] > widths[1] {
		t.Errorf("at 320 px the page is %v wide (%v)", widths, err)
	}
	axe, err := os.ReadFile(filepath.Join("..", "web", "testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	step("load axe-core", chromedp.Evaluate[chromedp.Void](string(axe)))
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(r.violations.map((v) => v.id + ": " + v.help + " at " + v.nodes.map((n) => n.target.join(" ")).join(", "))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if res != "[]" {
		t.Errorf("axe-core on My watches: %s", res)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir(t), "watch-e2e-320.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Marked seen, then stopped: the node forgets it, the browser its
	// digits.
	step("mark seen", chromedp.Click(chromedp.CSS("#watches-list li.sp-request button:first-of-type")))
	waitFor("seen", mine+`.includes("No new notices")`)
	step("stop", chromedp.Click(chromedp.CSS("#watches-list li.sp-request button:last-of-type")))
	waitFor("stopped", `document.getElementById("watches-summary").textContent.includes("You are not watching anyone")`)
	if got := listWatches(t, api, cscURL()); len(got) != 0 {
		t.Errorf("after stopping, the node keeps %+v", got)
	}
	if labels, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("signpost.watchLabels.practitioner")`)); labels != "{}" {
		t.Errorf("after stopping, local storage keeps %q", labels)
	}

	// The number never crossed the wire, in any form.
	lines := w.lines()
	frames := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "ws-") {
			frames++
		}
		for _, form := range []string{person.NHSNumber, display(person.NHSNumber), strings.ReplaceAll(display(person.NHSNumber), " ", "%20"), strings.ReplaceAll(display(person.NHSNumber), " ", "-")} {
			if strings.Contains(l, form) {
				t.Errorf("the number crossed the wire: %.120q", l)
			}
		}
	}
	if frames == 0 || len(lines) < 10 {
		t.Fatalf("recorded %d requests and frames (%d frames): the recorder saw nothing", len(lines), frames)
	}
	t.Logf("checked %d requests, headers and frames (%d WebSocket frames)", len(lines), frames)
}

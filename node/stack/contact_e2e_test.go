package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
)

// contactLists is GET /v1/contact-requests.
type contactLists struct {
	Received []node.ContactView `json:"received"`
	Sent     []node.ContactView `json:"sent"`
}

func listContactsAt(t *testing.T, base, token string) contactLists {
	t.Helper()
	st, body := call(t, "GET", base+"/v1/contact-requests", token, "")
	var l contactLists
	if st != 200 || json.Unmarshal([]byte(body), &l) != nil {
		t.Fatalf("contact requests at %s: %d %s", base, st, body)
	}
	return l
}

// TestContactEndToEnd drives two real demo nodes' pages in headless
// Chromium: the demo starts with a request waiting in the school's inbox
// (its policy is "refer"); a practitioner at northshire-csc asks the school
// for contact from the results; a practitioner at the school sees it in the
// inbox on their page and answers with a named person; the CSC
// practitioner's page shows the answer live under "My contact requests";
// then both nodes restart, and both pages still show the request answered,
// each from its own node's store.
func TestContactEndToEnd(t *testing.T) {
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
	csc, school := DemoAgencies[0], DemoAgencies[1]
	if school.NodeID != DemoReferAgency {
		t.Fatalf("the demo's refer agency is %s, not the school", DemoReferAgency)
	}
	cscURL := func() string { return "http://" + d.Stacks[0].Addr.String() }
	// The school's page is opened at localhost, the CSC's at 127.0.0.1:
	// two sites to the browser, so that each keeps its own session cookie.
	schoolURL := func() string { return "http://localhost:" + strconv.Itoa(d.Stacks[1].Addr.(*net.TCPAddr).Port) }
	schoolAPI := func() string { return "http://" + d.Stacks[1].Addr.String() }

	// The demo starts with a request from the CSC waiting at the school.
	waiting := listContactsAt(t, schoolAPI(), d.Tokens[school.NodeID]).Received
	if len(waiting) != 1 || waiting[0].State != "new" || waiting[0].NodeID != csc.NodeID || waiting[0].Message != demoContactMessage {
		t.Fatalf("the demo's waiting request: %+v", waiting)
	}

	// Another person both hold (the first is the waiting request's).
	var person DemoPerson
	var index int
	found := 0
	for i, p := range d.People {
		if slices.Contains(p.Holders, csc.NodeID) && slices.Contains(p.Holders, school.NodeID) {
			if found++; found == 2 {
				person, index = p, i
				break
			}
		}
	}
	if person.NHSNumber == "" {
		t.Fatal("the demo has no second person held by the CSC and the school")
	}
	localID := fmt.Sprintf("%s-%04d", school.NodeID, index) // as importPeople names it
	const contact = "Jo Bloggs, designated safeguarding lead, 01632 960123"

	ctxA := e2eBrowser(t) // the CSC practitioner's tab
	step := func(ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	waitFor := func(ctx context.Context, name, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({status: document.getElementById("status").textContent, errors: document.getElementById("error-summary-list").textContent, inbox: document.getElementById("inbox").textContent, mine: document.getElementById("mine").textContent})`))
			t.Fatalf("waiting for %s: %v; page state %s", name, err, state)
		}
	}
	signIn := func(ctx context.Context, url string) {
		t.Helper()
		step(ctx, "open "+url, chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
		// Record every WebSocket message the page receives.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			window.__notices = [];
			const WS = window.WebSocket;
			window.WebSocket = function (...a) { const s = new WS(...a); s.addEventListener("message", (e) => window.__notices.push(JSON.parse(e.data))); return s; };
			window.WebSocket.prototype = WS.prototype;
			return true; })()`)); err != nil {
			t.Fatal(err)
		}
		step(ctx, "sign in at "+url,
			chromedp.SendKeys(chromedp.CSS("#username"), "practitioner"),
			chromedp.SendKeys(chromedp.CSS("#password"), DemoPassword),
			chromedp.Click(chromedp.CSS("#signin-button")),
			chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	}
	// card is an expression for the school's inbox card about the person.
	card := `[...document.querySelectorAll("#inbox-list li")].find((li) => li.textContent.includes(` + strconv.Quote(localID) + `))`

	// The CSC practitioner asks the school for contact from the results.
	signIn(ctxA, cscURL())
	step(ctxA, "search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), display(person.NHSNumber)), chromedp.Click(chromedp.CSS("#search-button")))
	waitFor(ctxA, "the results", `[...document.querySelectorAll("#results-body tr")].some((r) => r.cells[0].textContent === `+strconv.Quote(school.Agency)+`)`)
	step(ctxA, "request contact from the school", chromedp.Click(chromedp.CSS(`#results-body tr:nth-child(`+strconv.Itoa(rowOf(t, ctxA, school.Agency))+`) button`)))
	waitFor(ctxA, "the request sent", `document.getElementById("results-body").textContent.includes("Request sent")`)
	waitFor(ctxA, "my request waiting", `document.getElementById("mine-list").textContent.includes("To Riverside Primary School") && document.getElementById("mine-list").textContent.includes("Waiting for an answer")`)

	// A practitioner at the school answers it on the school's page, in a
	// second tab of the same browser (made once the browser runs).
	ctxB, cancelB := chromedp.NewContext(ctxA)
	defer cancelB()
	signIn(ctxB, schoolURL())
	waitFor(ctxB, "the inbox", `document.querySelectorAll("#inbox-list li").length === 2 && !!(`+card+`)`)
	inputID, err := chromedp.Run(ctxB, chromedp.Evaluate[string](card+`.querySelector("form input").id`))
	if err != nil {
		t.Fatal(err)
	}
	step(ctxB, "answer with a named person", chromedp.SendKeys(chromedp.CSS("#"+inputID), contact),
		chromedp.Click(chromedp.CSS(`#`+inputID+`-group + button`)))
	waitFor(ctxB, "the card answered", card+`.textContent.includes("Answered") && `+card+`.textContent.includes(`+strconv.Quote(contact)+`)`)

	// The CSC practitioner's page is told at once.
	waitFor(ctxA, "the live answer", `window.__notices.some((n) => n.type === "contact-answer" && n.contact.contact === `+strconv.Quote(contact)+`)`)
	waitFor(ctxA, "the answer in the results", `document.getElementById("results-body").textContent.includes(`+strconv.Quote("Contact: "+contact)+`)`)
	waitFor(ctxA, "the answer under My contact requests", `document.getElementById("mine-list").textContent.includes(`+strconv.Quote(contact)+`) && document.getElementById("status").textContent.includes("Riverside Primary School answered your contact request")`)
	shot, err := chromedp.Run(ctxA, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir(t), "contact-e2e-answered.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// Both nodes restart (the CSC, the federation's first node, joins the
	// GP's gossip address this time).
	for _, i := range []int{1, 0} {
		cfg := d.Stacks[i].config
		if err := d.Stacks[i].Shutdown(context.Background()); err != nil {
			t.Fatalf("stop %s: %v", DemoAgencies[i].NodeID, err)
		}
		if i == 0 {
			cfg.Join = []string{d.Stacks[2].Agent.GossipAddr()}
		}
		s, err := StartStack(context.Background(), cfg)
		if err != nil {
			t.Fatalf("restart %s: %v", DemoAgencies[i].NodeID, err)
		}
		d.Stacks[i] = s
	}
	sent := listContactsAt(t, cscURL(), d.Tokens[csc.NodeID]).Sent
	i := slices.IndexFunc(sent, func(v node.ContactView) bool { return v.NodeID == school.NodeID && v.Contact == contact })
	if i < 0 || sent[i].State != "answered" {
		t.Fatalf("the CSC's requests after the restart: %+v", sent)
	}
	received := listContactsAt(t, schoolAPI(), d.Tokens[school.NodeID]).Received
	i = slices.IndexFunc(received, func(v node.ContactView) bool { return v.LocalID == localID })
	if len(received) != 2 || i < 0 || received[i].State != "answered" || received[i].Contact != contact || received[i].Delivery != "delivered" || received[i].DecidedBy != "user:practitioner" {
		t.Fatalf("the school's inbox after the restart: %+v", received)
	}

	// Both pages, signed in again at the restarted nodes, still show it.
	signIn(ctxA, cscURL())
	waitFor(ctxA, "the answer after the restart", `document.getElementById("mine-list").textContent.includes(`+strconv.Quote(contact)+`) && document.getElementById("mine-list").textContent.includes("Answered")`)
	signIn(ctxB, schoolURL())
	waitFor(ctxB, "the answered card after the restart", `!!(`+card+`) && `+card+`.textContent.includes("Answered") && `+card+`.textContent.includes(`+strconv.Quote(contact)+`)`)
	if got, err := chromedp.Run(ctxB, chromedp.Evaluate[string](`document.getElementById("inbox-summary").textContent`)); err != nil || !strings.Contains(got, "1 request is waiting") {
		t.Errorf("the school's inbox summary %q (%v), want the demo's request still waiting", got, err)
	}
}

package stack

import (
	"context"
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

// TestShieldedEndToEnd drives two real demo nodes' pages in headless
// Chromium at 320 px: a practitioner at the emergency department finds a
// person the shielded clinic holds — shown as "a service that protects its
// patients' confidentiality", not counted among the agencies, with a way to
// ask through northshire-csc — and asks through it; their list says "asked
// through" and does not name the clinic; a practitioner at the clinic sees
// the request in the inbox as coming through northshire-csc from the
// emergency department and answers, consenting to be named; only then does
// the asker's page name the clinic; the broker's page lists the request it
// passed on without naming the clinic. Each state: nothing wider than the
// window, axe-core 0 violations, a screenshot.
func TestShieldedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes and a browser")
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
	const askerAt = 3 // city-ed
	clinic, broker, asker := DemoAgencies[clinicAt], DemoAgencies[brokerAt], DemoAgencies[askerAt]
	var person DemoPerson
	for _, p := range d.People {
		if slices.Contains(p.Shielded, clinic.NodeID) && !slices.Contains(p.Holders, asker.NodeID) {
			person = p
			break
		}
	}
	if person.NHSNumber == "" {
		t.Fatal("the demo has no person the clinic holds and the emergency department does not")
	}
	// The asker's page at 127.0.0.1, the clinic's at localhost: two sites,
	// two session cookies.
	askerURL := "http://" + d.Stacks[askerAt].Addr.String()
	clinicURL := "http://localhost:" + strconv.Itoa(d.Stacks[clinicAt].Addr.(*net.TCPAddr).Port)
	axe, err := os.ReadFile(filepath.Join("..", "web", "testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}

	ctxA := e2eBrowser(t)
	step := func(ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	waitFor := func(ctx context.Context, name, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({status: document.getElementById("status").textContent, errors: document.getElementById("error-summary-list").textContent, results: document.getElementById("results").textContent, inbox: document.getElementById("inbox").textContent, mine: document.getElementById("mine").textContent})`))
			t.Fatalf("waiting for %s: %v; page state %s", name, err, state)
		}
	}
	text := func(ctx context.Context, expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	shots := 0
	// check checks a state, its screenshot showing the element sel.
	check := func(ctx context.Context, name, sel string) {
		t.Helper()
		widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, innerWidth]`))
		if err != nil || widths[1] != 320 || widths[0] > widths[1] {
			t.Errorf("%s: page %v px wide in a window of 320 (%v)", name, widths, err)
		}
		if loaded, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`)); !loaded {
			step(ctx, "load axe-core", chromedp.Evaluate[chromedp.Void](string(axe)))
		}
		res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(r.violations.map((v) => v.id + ": " + v.help + " at " + v.nodes.map((n) => n.target.join(" ")).join(", "))))`, chromedp.EvalAwaitPromise))
		if err != nil || res != "[]" {
			t.Errorf("axe-core on %s: %s %v", name, res, err)
		}
		shots++
		// The window's view, from sel (a full-page capture resizes the page
		// under the next click).
		step(ctx, "show "+sel, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+strconv.Quote(sel)+`).scrollIntoView({block: "start"})`))
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(screenshotDir(t), "shielded-e2e-"+strconv.Itoa(shots)+"-"+strings.NewReplacer(" ", "-", "'", "").Replace(name)+".png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of %s: %s", name, path)
	}
	signIn := func(ctx context.Context, url string) {
		t.Helper()
		step(ctx, "a 320 px window", chromedp.EmulateViewport(320, 800))
		step(ctx, "open "+url, chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
		step(ctx, "sign in at "+url,
			chromedp.SendKeys(chromedp.CSS("#username"), "practitioner"),
			chromedp.SendKeys(chromedp.CSS("#password"), DemoPassword),
			chromedp.Click(chromedp.CSS("#signin-button")),
			chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
	}
	mine := `document.getElementById("mine-list").textContent`

	// The asker finds the person: the named agencies in the table, the
	// clinic apart and unnamed.
	signIn(ctxA, askerURL)
	step(ctxA, "search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), display(person.NHSNumber)), chromedp.Click(chromedp.CSS("#search-button")))
	waitFor(ctxA, "the shielded service", `document.querySelectorAll("#results-shielded li").length === 1 && !document.getElementById("results-shielded").hidden`)
	others := len(person.Holders)
	if got, want := text(ctxA, `document.getElementById("results-summary").textContent`), strconv.Itoa(others)+" other agencies hold a record."; others > 1 && got != want {
		t.Errorf("results summary %q, want %q (the shielded service is not counted)", got, want)
	}
	shielded := text(ctxA, `document.getElementById("results-shielded").textContent`)
	if !strings.Contains(shielded, "A service that protects its patients’ confidentiality also holds a record") || !strings.Contains(shielded, "Ask through "+broker.Agency) {
		t.Errorf("the shielded service reads %q", shielded)
	}
	if page := text(ctxA, `document.body.textContent`); strings.Contains(page, clinic.Agency) || strings.Contains(page, clinic.NodeID) {
		t.Fatal("the asker's page names the clinic before it consented")
	}
	if rows := text(ctxA, `document.getElementById("results-body").textContent`); strings.Contains(rows, broker.Agency) && !slices.Contains(person.Holders, broker.NodeID) {
		t.Errorf("the broker is listed as holding a record itself: %q", rows)
	}
	check(ctxA, "results with a shielded service", "#results-summary")

	// Asked through the broker.
	step(ctxA, "ask through the broker", chromedp.Click(chromedp.CSS("#results-shielded li button")))
	waitFor(ctxA, "the request sent", `document.getElementById("results-shielded").textContent.includes("Request sent through `+broker.Agency+`")`)
	waitFor(ctxA, "my request through the broker", mine+`.includes("Asked through") && `+mine+`.includes(`+strconv.Quote(broker.Agency)+`) && `+mine+`.includes("Waiting for an answer")`)
	if strings.Contains(text(ctxA, mine), clinic.Agency) {
		t.Fatal("the asker's list names the clinic before it consented")
	}
	check(ctxA, "asked through the broker", "#mine")

	// The clinic's practitioner answers, consenting to be named.
	ctxB, cancelB := chromedp.NewContext(ctxA)
	defer cancelB()
	signIn(ctxB, clinicURL)
	card := `[...document.querySelectorAll("#inbox-list li")].find((li) => li.textContent.includes(` + strconv.Quote("Through"+broker.Agency) + `))`
	waitFor(ctxB, "the brokered request in the inbox", `!!(`+card+`) && `+card+`.textContent.includes(`+strconv.Quote("From "+asker.Agency)+`)`)
	check(ctxB, "a request through the broker in the clinic's inbox", "#inbox")
	// Still unnamed at the asker while the clinic has not decided.
	if sent := listAll(t, d, askerAt).Sent; len(sent) != 1 || sent[0].NodeID != "" || sent[0].Agency != node.ShieldedService {
		t.Fatalf("the asker's request before consent: %+v", sent)
	}
	const contact = "Alex Doe, clinic safeguarding lead, 01632 960777 (synthetic)"
	inputID := text(ctxB, card+`.querySelector("form input[type=text]").id`)
	step(ctxB, "answer, consenting to be named",
		chromedp.SendKeys(chromedp.CSS("#"+inputID), contact),
		chromedp.Click(chromedp.CSS("#consent-"+strings.TrimPrefix(inputID, "answer-"))),
		chromedp.Click(chromedp.CSS(`#`+inputID+`-group ~ button`)))
	waitFor(ctxB, "the card answered", card+`.textContent.includes("Answered") && `+card+`.textContent.includes("Named your agencyYes")`)
	check(ctxB, "the clinic answered with consent", "#inbox")

	// Now, and only now, the asker's page names the clinic.
	waitFor(ctxA, "the clinic named", mine+`.includes(`+strconv.Quote("To "+clinic.Agency)+`) && `+mine+`.includes(`+strconv.Quote(contact)+`)`)
	check(ctxA, "the clinic named after consent", "#mine")

	// The broker's page lists what it passed on, without naming the clinic
	// (the asker's tab is done: it signs in at the broker now).
	signIn(ctxA, "http://"+d.Stacks[brokerAt].Addr.String())
	waitFor(ctxA, "the broker's relayed request", `!document.getElementById("relayed").hidden && document.getElementById("relayed-list").textContent.includes(`+strconv.Quote("From "+asker.Agency)+`) && document.getElementById("relayed-list").textContent.includes("Named the serviceYes")`)
	if got := text(ctxA, `document.getElementById("relayed").textContent`); strings.Contains(got, clinic.Agency) || strings.Contains(got, clinic.NodeID) {
		t.Errorf("the broker's page names the clinic: %q", got)
	}
	check(ctxA, "the broker's relayed requests", "#relayed")
}

package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/chromedp/chromedp"

	"github.com/signpost-federation/signpost/node/internal/auth"
)

// The page's wording for a number that fails its check digit, and for
// one that no check digit could make valid: the same sentence, which says
// to check the number at its source and never which digit would make it
// valid (a mistyped number "corrected" that way is another person's).
const wordingNotValid = "Enter a valid NHS number. It is not a valid number: check it against the record."

// axeSHA256 is the checksum of the vendored axe-core (testdata/axe-core,
// see its README).
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// axeSource returns the vendored axe-core, after checking that it is the
// file the README describes.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js"))
	if err != nil {
		t.Fatalf("axe-core: %v", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != axeSHA256 {
		t.Fatalf("testdata/axe-core/axe.min.js has SHA-256 %x, want %s (see its README)", sum, axeSHA256)
	}
	return string(b)
}

// outputDir is where the page tests leave their screenshots:
// $SIGNPOST_TEST_OUTPUT/page (the variable the end-to-end test in
// node/stack uses too), else a temporary directory. Never in the
// repository.
func outputDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SIGNPOST_TEST_OUTPUT")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, "page")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stateChecker checks each state the page reaches: nothing wider than the
// window (document.documentElement.scrollWidth <= innerWidth), no axe-core
// violation, and a screenshot saved and its path logged.
type stateChecker struct {
	d     pageDriver
	axe   string
	dir   string
	width int
	n     int
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

func (c *stateChecker) check(name string) {
	c.d.t.Helper()
	t, ctx := c.d.t, c.d.ctx
	widths, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, innerWidth]`))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if widths[1] != c.width {
		t.Fatalf("%s: the window is %d px wide, want %d", name, widths[1], c.width)
	}
	if widths[0] > widths[1] {
		wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > innerWidth).slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + "." + e.className).join(", ")`))
		t.Errorf("%s at %d px: the page is %d px wide and scrolls sideways (too wide: %s)", name, c.width, widths[0], wide)
	}
	c.n++
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", name, err)
	}
	path := filepath.Join(c.dir, fmt.Sprintf("%d-%02d-%s.png", c.width, c.n, strings.ReplaceAll(name, " ", "-")))
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of %q at %d px: %s", name, c.width, path)
	if loaded, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`)); !loaded {
		c.d.step("load axe-core", chromedp.Evaluate[chromedp.Void](c.axe))
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe-core: %v", name, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		t.Fatalf("%s: axe-core answered %q: %v", name, res, err)
	}
	for _, v := range vs {
		t.Errorf("%s at %d px: axe-core %s (%s): %s, at %v", name, c.width, v.ID, v.Impact, v.Help, v.Nodes)
	}
}

// reachable checks that the button sel is on screen (within the window's
// width once scrolled to) and that it, not something over it, takes a
// click at its centre.
func (d pageDriver) reachable(sel string) {
	d.t.Helper()
	ok, err := chromedp.Run(d.ctx, chromedp.Evaluate[string](`(() => {
		const b = document.querySelector(`+jsString(sel)+`);
		if (!b) return "missing";
		b.scrollIntoView({block: "center", inline: "nearest"});
		const r = b.getBoundingClientRect();
		if (r.width === 0 || r.height === 0) return "not shown";
		if (r.left < 0 || r.right > innerWidth) return "off screen: " + r.left + "–" + r.right + " of " + innerWidth;
		const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		return e === b || b.contains(e) ? "" : "covered by " + (e ? e.tagName : "nothing");
	})()`))
	if err != nil || ok != "" {
		d.t.Errorf("%s is not reachable: %s %v", sel, ok, err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestPageLayoutAndAccessibility drives every state of the page at 320 px
// (the narrowest screen WCAG's reflow criterion asks for), at 375 px (a
// common phone) and at a desktop width: signing in, sign-in errors, the
// search, a number error, results with several agencies and a live notice,
// a contact requested, a request from another agency arriving live in the
// inbox, an answer refused for want of a contact, the request answered, the
// holder's answer to the page's own request arriving live in "My contact
// requests", a request declined with a reason, and the auditor's
// subject-access form and results. In each state the page must not scroll
// sideways, axe-core must find no violation, and a screenshot is saved;
// "Request contact" and "Send answer" must be on screen and take a click.
func TestPageLayoutAndAccessibility(t *testing.T) {
	axe := axeSource(t)
	dir := outputDir(t)
	for _, width := range []int{320, 375, 1024} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			d := pageDriver{t, browser(t)}
			f, url := startPage(t, false)
			c := &stateChecker{d: d, axe: axe, dir: dir, width: width}
			d.step("set the window's size", chromedp.EmulateViewport(int64(width), 700))
			d.step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
			c.check("sign in")
			d.step("sign in with nothing", chromedp.Click(chromedp.CSS("#signin-button")))
			d.waitFor("the error summary", `!document.getElementById("error-summary").hidden`)
			c.check("sign in errors")
			d.step("sign in",
				chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
				chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
				chromedp.Click(chromedp.CSS("#signin-button")),
				chromedp.WaitVisible(chromedp.CSS("#nhs-number")))
			d.waitFor("the error summary to go", `document.getElementById("error-summary").hidden`)
			c.check("search")
			d.step("type a wrong check digit", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0019"), chromedp.Click(chromedp.CSS("#search-button")))
			d.waitFor("the error summary", `!document.getElementById("error-summary").hidden && !document.getElementById("nhs-error").hidden`)
			c.check("number error")
			d.step("type a valid number",
				chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById("nhs-number"); e.value = ""; e.dispatchEvent(new Event("input")); })()`),
				chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0018"),
				chromedp.Click(chromedp.CSS("#search-button")))
			d.waitFor("results", `document.querySelectorAll("#results-body tr").length === 1`)
			c.check("results")
			d.step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
			d.waitFor("the second agency", `document.querySelectorAll("#results-body tr").length === 2 && document.getElementById("notices").textContent.includes("Elm Street Surgery is now involved")`)
			c.check("results with several agencies")
			for i := 1; i <= 2; i++ {
				d.reachable(fmt.Sprintf("#results-body tr:nth-child(%d) button", i))
			}
			// The watch is kept by the node too: "My watches" names the
			// person by the last four digits this browser keeps, and a
			// notice stored for it arrives live with its time.
			d.waitFor("my watch", `document.querySelectorAll("#watches-list li.sp-request").length === 1 && document.getElementById("watches-list").textContent.includes("NHS number ending 0018")`)
			f.waitStaff(d.ctx)
			f.push(f.storeNotice(0, "involved", "2026-11-25T10:30:00Z"))
			d.waitFor("the stored notice", `document.getElementById("watches-list").textContent.includes("NHS number ending 0018: Another agency became involved.") && document.getElementById("watches-summary").textContent.includes("1 notice is new")`)
			c.check("my watches with a notice")
			d.reachable("#watches-list li.sp-request button:last-of-type")
			d.step("request contact", chromedp.Click(chromedp.CSS("#results-body tr:nth-child(2) button")))
			d.waitFor("the contact answer", `document.getElementById("results-body").textContent.includes("Request sent")`)
			d.waitFor("my request listed", `document.getElementById("mine-list").textContent.includes("Waiting for an answer")`)
			c.check("contact requested")
			// Another agency asks this one for contact: the inbox shows it live.
			f.waitStaff(d.ctx)
			req := f.receive("recv-answer-1", school, "Sam Okafor (designated safeguarding lead)", "csc-1042",
				"We have a concern about attendance and would like to talk to the allocated social worker about this child.")
			f.push(map[string]any{"type": "contact-request", "contact": req})
			d.waitFor("the inbox", `document.querySelectorAll("#inbox-list li").length === 1 && document.getElementById("status").textContent.includes("New contact request from Riverside Primary School")`)
			c.check("inbox with a waiting request")
			d.reachable("#inbox-list form button")
			d.step("answer with nothing", chromedp.Click(chromedp.CSS("#inbox-list form button")))
			d.waitFor("the error", `!document.getElementById("error-summary").hidden && !document.getElementById("answer-recv-answer-1-error").hidden`)
			c.check("inbox answer error")
			d.step("answer", chromedp.SendKeys(chromedp.CSS("#answer-recv-answer-1"), "Jo Bloggs, allocated social worker, 01632 960123"),
				chromedp.Click(chromedp.CSS("#inbox-list form button")))
			d.waitFor("answered", `document.getElementById("inbox-list").textContent.includes("Answered") && document.getElementById("error-summary").hidden`)
			if got := d.text("#inbox-list"); !strings.Contains(got, "Jo Bloggs, allocated social worker, 01632 960123") || strings.Contains(got, "Decline") {
				t.Errorf("answered request shows %q", got)
			}
			c.check("inbox answered")
			// The GP answers this page's request: "My contact requests" shows
			// it live, with the number's last four digits kept by the page.
			var sentID string
			f.mu.Lock()
			for id := range f.sent {
				sentID = id
			}
			f.mu.Unlock()
			f.push(map[string]any{"type": "contact-answer", "contact": f.decideSent(sentID, "answered", "contact", "Dr Priya Shah, safeguarding lead GP, 01632 960555")})
			d.waitFor("my request answered", `document.getElementById("mine-list").textContent.includes("Dr Priya Shah") && document.getElementById("status").textContent.includes("Elm Street Surgery answered your contact request")`)
			if got := d.text("#results-body"); !strings.Contains(got, "Contact: Dr Priya Shah, safeguarding lead GP, 01632 960555") {
				t.Errorf("the results row still says %q", got)
			}
			if got := d.text("#mine-list"); !strings.Contains(got, "NHS number ending 0018") || !strings.Contains(got, "Answered") {
				t.Errorf("my request shows %q", got)
			}
			c.check("my request answered")
			// A second request, declined with a reason.
			req = f.receive("recv00000000000000002", gp, "Dr Priya Shah", "csc-2077", "")
			f.push(map[string]any{"type": "contact-request", "contact": req})
			d.waitFor("the second request", `document.querySelectorAll("#inbox-list li").length === 2`)
			d.step("open decline", chromedp.Click(chromedp.CSS("#inbox-list details summary")))
			c.check("inbox decline open")
			d.step("decline", chromedp.SendKeys(chromedp.CSS("#decline-recv00000000000000002"), "We closed this case in 2024; ask the duty desk"),
				chromedp.Click(chromedp.CSS("#inbox-list details form button")))
			d.waitFor("declined", `document.getElementById("inbox-list").textContent.includes("Declined")`)
			c.check("inbox declined")
			d.step("sign out", chromedp.Click(chromedp.CSS("#sign-out")), chromedp.WaitVisible(chromedp.CSS("#username")))
			d.signInAs(url, "audrey", "#sar-number")
			c.check("subject access")
			d.step("search the audit log", chromedp.SendKeys(chromedp.CSS("#sar-number"), "999 000 0018"), chromedp.Click(chromedp.CSS("#sar-button")))
			d.waitFor("the events", `document.querySelectorAll("#sar-body tr").length === 2`)
			c.check("subject access results")
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.contacts) != 1 || f.contacts[0]["nodeId"] != "node-gp" {
				t.Errorf("contact requests %v, want the GP's", f.contacts)
			}
		})
	}
}

// TestNumberErrorWording: each way an NHS number can be wrong gets the
// GOV.UK pattern — "There is a problem" above a summary linking to the
// field, and the same message at the field: "Enter a valid NHS number" and
// why, in plain words, from the module's reason code. No message names a
// digit (other than the "10" of "10 digits"): least of all the one that
// would make a mistyped number valid.
func TestNumberErrorWording(t *testing.T) {
	d := pageDriver{t, browser(t)}
	_, url := startPage(t, false)
	d.signIn(url)
	for _, tc := range []struct{ name, input, want string }{
		{"nothing", "", "Enter an NHS number"},
		{"only spaces and a hyphen", " - ", "Enter an NHS number"},
		{"too short", "999 000 001", "Enter a valid NHS number. It is too short: an NHS number has 10 digits."},
		{"too long", "999 000 00188", "Enter a valid NHS number. It is too long: an NHS number has 10 digits."},
		{"letters", "999 000 001B", "Enter a valid NHS number. It contains letters: an NHS number has only digits."},
		{"other characters", "999/000/0018", "Enter a valid NHS number. It contains characters that are not digits: an NHS number has only digits, perhaps with spaces."},
		{"digits of another script", "٩٩٩٠٠٠٠٠١٨", "Enter a valid NHS number. It contains digits of another script: type it with the digits on a standard keyboard."},
		{"wrong check digit", "999 000 0019", wordingNotValid},
		{"no check digit possible", "999 000 0000", wordingNotValid},
		{"placeholder", "999 999 9999", "Enter a valid NHS number. All its digits are the same, which is a placeholder, not a person’s number: check it against the record."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pageDriver{t, d.ctx}
			d.step("type it and search",
				chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById("nhs-number"); e.value = `+jsString(tc.input)+`; e.dispatchEvent(new Event("input")); })()`),
				chromedp.Click(chromedp.CSS("#search-button")))
			d.waitFor("the error summary to take focus", `document.activeElement && document.activeElement.id === "error-summary"`)
			if got := d.text("#error-summary-title"); got != "There is a problem" {
				t.Errorf("summary title %q", got)
			}
			if got := d.text("#error-summary-list"); got != tc.want {
				t.Errorf("summary %q, want %q", got, tc.want)
			}
			if got := d.text("#nhs-error"); got != tc.want {
				t.Errorf("field error %q, want %q", got, tc.want)
			}
			if link, _ := chromedp.Run(d.ctx, chromedp.Evaluate[string](`document.querySelector("#error-summary-list a").getAttribute("href")`)); link != "#nhs-number" {
				t.Errorf("the summary links to %q, want the field", link)
			}
			if i := strings.IndexFunc(strings.ReplaceAll(tc.want, "10 digits", ""), unicode.IsDigit); i >= 0 {
				t.Errorf("%q names a digit", tc.want)
			}
			if searched, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("results").hidden`)); searched {
				t.Error("an invalid number was searched for")
			}
		})
	}
}

// TestPageNamesAgencyAndOffersItsPurposes: the page names the agency whose
// node the practitioner signed in to and offers exactly the purposes the
// node's session answer lists: the school, authorised for safeguarding
// only, is never offered "Direct care"; the CSC both, safeguarding first
// whatever order the node lists them in. A user the node authorises for no
// purpose is told so and offered no search.
func TestPageNamesAgencyAndOffersItsPurposes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		agency   map[string]string
		purposes []string
		want     []string // the options, value=label
	}{
		{"school", school, []string{"safeguarding"}, []string{"safeguarding=Safeguarding"}},
		{"children's social care", home, []string{"direct-care", "safeguarding"}, []string{"safeguarding=Safeguarding", "direct-care=Direct care"}},
		{"no purpose", gp, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pageDriver{t, browser(t)}
			_, url := startPageWith(t, false, func(c *auth.Config) {
				c.Agency = auth.SessionAgency{NodeID: tc.agency["nodeId"], Name: tc.agency["agency"], Category: tc.agency["category"]}
				c.Purposes = practitionerPurposes(tc.purposes...)
			})
			d.step("open the page", chromedp.Navigate(url+"/"), chromedp.WaitVisible(chromedp.CSS("#username")))
			d.step("sign in",
				chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
				chromedp.SendKeys(chromedp.CSS("#password"), "correct horse battery"),
				chromedp.Click(chromedp.CSS("#signin-button")),
				chromedp.WaitVisible(chromedp.CSS("#search-title")))
			if got := d.text("#account-agency"); got != tc.agency["agency"] {
				t.Errorf("the header names %q, want %q", got, tc.agency["agency"])
			}
			if got := d.text("#account-name"); got != "alice (practitioner)" {
				t.Errorf("the header names the user %q", got)
			}
			if got, want := d.text("#search-as"), "You are searching on behalf of "+tc.agency["agency"]+"."; got != want {
				t.Errorf("the search says %q, want %q", got, want)
			}
			labels, err := chromedp.Run(d.ctx, chromedp.Evaluate[[]string](`[...document.getElementById("purpose").options].map((o) => o.value + "=" + o.textContent)`))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(labels, tc.want) {
				t.Errorf("purposes offered %q, want %q", labels, tc.want)
			}
			formShown, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("search-form").hidden`))
			told, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("no-purposes").hidden`))
			if formShown != (len(tc.purposes) > 0) || told != (len(tc.purposes) == 0) {
				t.Errorf("search form shown %v, told no purpose %v, for purposes %v", formShown, told, tc.purposes)
			}
		})
	}
}

// TestKindsAndSinceInWords: results name each agency's kind of service in
// words, never as a slug (a slug the page has no label for is turned into
// words), and say what "Since" is.
func TestKindsAndSinceInWords(t *testing.T) {
	d := pageDriver{t, browser(t)}
	_, url := startPage(t, false)
	d.signIn(url)
	d.step("search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "9990000018"), chromedp.Click(chromedp.CSS("#search-button")))
	d.waitFor("the holder", `document.querySelectorAll("#results-body tr").length === 1`)
	d.step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	d.waitFor("the GP", `document.querySelectorAll("#results-body tr").length === 2`)
	kinds, err := chromedp.Run(d.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#results-body tr")].map((r) => r.cells[0].textContent + "|" + r.cells[1].textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Riverside Primary School|Education", "Elm Street Surgery|GP practice"}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %q, want %q", kinds, want)
	}
	if got := d.text("#since-hint"); got != "“Since” is the date that agency registered its record for this person." {
		t.Errorf("Since is explained as %q", got)
	}
	words, err := chromedp.Run(d.ctx, chromedp.Evaluate[[]string](`(async () => { const m = await import("./app.js"); return ["emergency-department", "children-social-care", "youth-offending-team", "gp"].map(m.categoryLabel); })()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Emergency department", "Children’s social care", "Youth offending team", "GP practice"}; !slices.Equal(words, want) {
		t.Errorf("labels %q, want %q", words, want)
	}
}

// TestOperatorInbox: an operator's page shows the agency's inbox (and no
// search, no "My contact requests"), and the operator answers a request
// there; a request already decided by a colleague is said so, with the
// inbox refreshed.
func TestOperatorInbox(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	f.receive("recv-answer-1", school, "Sam Okafor", "csc-1042", "please call")
	f.receive("recv00000000000000002", gp, "Dr Priya Shah", "csc-2077", "")
	d.signInAs(url, "oscar", "#inbox-title")
	d.waitFor("the inbox", `document.querySelectorAll("#inbox-list li").length === 2`)
	if shown, _ := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`!document.getElementById("search").hidden || !document.getElementById("mine").hidden`)); shown {
		t.Error("an operator is offered a search or a list of their own requests")
	}
	if got := d.text("#inbox-summary"); got != "2 requests are waiting for an answer." {
		t.Errorf("inbox summary %q", got)
	}
	d.step("answer the school", chromedp.SendKeys(chromedp.CSS("#answer-recv-answer-1"), "Jo Bloggs, duty manager, 01632 960123"),
		chromedp.Click(chromedp.CSS("#answer-recv-answer-1-group + button")))
	d.waitFor("answered", `document.getElementById("inbox-summary").textContent === "1 request is waiting for an answer."`)
	// A colleague declines the GP's request meanwhile; the operator's
	// answer is refused and the card shows the decline.
	f.mu.Lock()
	f.received["recv00000000000000002"]["state"] = "declined"
	f.received["recv00000000000000002"]["reason"] = "not known here"
	f.mu.Unlock()
	d.step("answer the GP", chromedp.SendKeys(chromedp.CSS("#answer-recv00000000000000002"), "Jo"),
		chromedp.Click(chromedp.CSS("#answer-recv00000000000000002-group + button")))
	d.waitFor("the refusal", `document.getElementById("error-summary-list").textContent === "Someone at your agency has already dealt with this request"`)
	d.waitFor("the decline shown", `document.getElementById("inbox-list").textContent.includes("not known here") && document.getElementById("inbox-summary").textContent === "Every request has been answered or declined."`)
}

// TestPageShieldedService drives the page's shielded-service states at
// 320 px, 375 px and a desktop width: a shielded clinic among the results
// (listed apart, not counted, its broker named), asked through the broker
// (the request carries the broker as nodeId and the entry's key and sealed
// holder, never naming the clinic), and a request that came through a
// broker in the inbox, with the box that consents to being named. In each
// state: no sideways scrolling, no axe-core violation, a screenshot; the
// buttons and the box are on screen and take a click.
func TestPageShieldedService(t *testing.T) {
	axe := axeSource(t)
	dir := outputDir(t)
	for _, width := range []int{320, 375, 1024} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			d := pageDriver{t, browser(t)}
			f, url := startPage(t, false)
			var brokerKey []byte
			for _, m := range f.members {
				if m["nodeId"] == school["nodeId"] {
					brokerKey, _ = base64.StdEncoding.DecodeString(m["publicKey"])
				}
			}
			f.addShielded(t, brokerKey)
			c := &stateChecker{d: d, axe: axe, dir: dir, width: width}
			d.step("set the window's size", chromedp.EmulateViewport(int64(width), 700))
			d.signIn(url)
			d.step("search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "999 000 0018"), chromedp.Click(chromedp.CSS("#search-button")))
			d.waitFor("the shielded service", `document.querySelectorAll("#results-shielded li").length === 1 && document.querySelectorAll("#results-body tr").length === 1`)
			if got := d.text("#results-summary"); got != "1 other agency holds a record." {
				t.Errorf("results summary %q: the shielded service must not be counted", got)
			}
			if got := d.text("#results-shielded"); !strings.Contains(got, "A service that protects its patients’ confidentiality also holds a record") ||
				!strings.Contains(got, "Ask through Riverside Primary School") || strings.Contains(got, "Bay Sexual Health") {
				t.Errorf("the shielded service reads %q", got)
			}
			c.check("results with a shielded service")
			d.reachable("#results-shielded li button")
			d.step("ask through the broker", chromedp.Click(chromedp.CSS("#results-shielded li button")))
			d.waitFor("the request sent", `document.getElementById("results-shielded").textContent.includes("Request sent through Riverside Primary School")`)
			c.check("asked through a broker")
			f.mu.Lock()
			if len(f.contacts) != 1 || f.contacts[0]["nodeId"] != school["nodeId"] || f.contacts[0]["entryKey"] == "" || f.contacts[0]["shield"] == "" {
				t.Errorf("the request through the broker: %v", f.contacts)
			}
			f.mu.Unlock()
			// A request that came to this (shielded) agency through its broker.
			f.waitStaff(d.ctx)
			req := f.receive("recv-brokered-000001", gp, "Dr Priya Shah", "clinic-0003", "May we speak to you about this young person?")
			req["via"], req["broker"] = school["agency"], school["nodeId"]
			f.push(map[string]any{"type": "contact-request", "contact": req})
			d.waitFor("the brokered request", `document.querySelectorAll("#inbox-list li").length === 1 && document.getElementById("inbox-list").textContent.includes("Riverside Primary School (your broker)")`)
			if off, err := chromedp.Run(d.ctx, chromedp.Evaluate[bool](`document.getElementById("consent-recv-brokered-000001").checked === false`)); err != nil || !off {
				t.Fatalf("consent to be named is not off by default (%v)", err)
			}
			c.check("a request through a broker")
			d.reachable("#consent-recv-brokered-000001")
			d.reachable("#inbox-list form button")
		})
	}
}

package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/signpost-federation/signpost/wasm"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// parsePage parses index.html and indexes its elements by id.
func parsePage(t *testing.T) (*html.Node, map[string]*html.Node) {
	t.Helper()
	f, err := FS.Open("index.html")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := html.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*html.Node{}
	for n := range doc.Descendants() {
		if id := attr(n, "id"); id != "" {
			if _, dup := ids[id]; dup {
				t.Errorf("duplicate id %q", id)
			}
			ids[id] = n
		}
	}
	return doc, ids
}

func attr(n *html.Node, key string) string {
	if n.Type != html.ElementNode {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func elements(doc *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	}
	return out
}

func TestEveryControlHasALabel(t *testing.T) {
	doc, ids := parsePage(t)
	labelled := map[string]bool{}
	for _, l := range elements(doc, "label") {
		labelled[attr(l, "for")] = true
		if text(l) == "" {
			t.Errorf("label for %q is empty", attr(l, "for"))
		}
	}
	var controls []*html.Node
	for _, tag := range []string{"input", "select", "textarea"} {
		controls = append(controls, elements(doc, tag)...)
	}
	if len(controls) < 4 {
		t.Fatalf("found %d form controls, expected at least username, password, NHS number, purpose", len(controls))
	}
	for _, c := range controls {
		switch attr(c, "type") {
		case "hidden", "submit", "button":
			continue
		}
		id := attr(c, "id")
		if id == "" || !labelled[id] {
			t.Errorf("<%s name=%q> has no <label for>", c.Data, attr(c, "name"))
		}
		for _, ref := range strings.Fields(attr(c, "aria-describedby")) {
			if ids[ref] == nil {
				t.Errorf("#%s: aria-describedby names missing #%s", id, ref)
			}
		}
	}
	for _, b := range elements(doc, "button") {
		if text(b) == "" && attr(b, "aria-label") == "" {
			t.Errorf("button #%s has no accessible name", attr(b, "id"))
		}
	}
}

func TestNHSNumberField(t *testing.T) {
	_, ids := parsePage(t)
	in := ids["nhs-number"]
	if in == nil {
		t.Fatal("no #nhs-number input")
	}
	for k, want := range map[string]string{"inputmode": "numeric", "autocomplete": "off", "type": "text", "spellcheck": "false"} {
		if got := attr(in, k); got != want {
			t.Errorf("#nhs-number %s=%q, want %q", k, got, want)
		}
	}
	desc := strings.Fields(attr(in, "aria-describedby"))
	if !slices.Contains(desc, "nhs-hint") || !slices.Contains(desc, "nhs-error") {
		t.Errorf("#nhs-number aria-describedby=%q, want the hint and the error", attr(in, "aria-describedby"))
	}
	if got := text(ids["nhs-hint"]); got != "10 digits, like 999 123 4567" {
		t.Errorf("hint %q", got)
	}
	if group := ids["nhs-group"]; group == nil || !strings.Contains(attr(group, "class"), "sp-form-group") {
		t.Error("the NHS number has no form group to carry the error border")
	}
}

func TestErrorSummaryAndLiveRegions(t *testing.T) {
	doc, ids := parsePage(t)
	s := ids["error-summary"]
	if s == nil {
		t.Fatal("no #error-summary")
	}
	if attr(s, "role") != "alert" || attr(s, "tabindex") != "-1" {
		t.Errorf("error summary role=%q tabindex=%q, want alert and -1 (it takes focus)", attr(s, "role"), attr(s, "tabindex"))
	}
	if ids["error-summary-list"] == nil || !strings.Contains(text(s), "There is a problem") {
		t.Error("error summary lacks its title or list")
	}
	if n := ids["notices"]; n == nil || attr(n, "aria-live") != "polite" {
		t.Error("live notices need an aria-live region")
	}
	if html := elements(doc, "html")[0]; attr(html, "lang") == "" {
		t.Error("<html> has no lang")
	}
	if len(elements(doc, "main")) != 1 || len(elements(doc, "h1")) == 0 {
		t.Error("need one <main> and headings")
	}
	if sk := ids["main-content"]; sk == nil {
		t.Error("the skip link has no target")
	}
	for _, th := range elements(doc, "th") {
		if attr(th, "scope") == "" {
			t.Error("table header without scope")
		}
	}
}

// TestNoInlineScriptOrHandlers: the node's Content-Security-Policy allows
// scripts from 'self' only, so an inline script or on* attribute would
// silently not run.
func TestNoInlineScriptOrHandlers(t *testing.T) {
	doc, _ := parsePage(t)
	for _, s := range elements(doc, "script") {
		if attr(s, "src") == "" || text(s) != "" {
			t.Error("inline <script>")
		}
	}
	for n := range doc.Descendants() {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s> inline handler", n.Data, a.Key)
			}
		}
		if n.Type == html.ElementNode && n.Data == "style" || hasAttr(n, "style") {
			t.Errorf("<%s> inline style", n.Data)
		}
	}
}

// TestNoExternalURLs: every asset is served by the node. No http(s) URL, or
// protocol-relative URL, to another host in any asset the browser loads.
// NOTICE is credits text, not loaded by the page.
func TestNoExternalURLs(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == "NOTICE" {
			return err
		}
		b, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(b), -1) {
			t.Errorf("%s refers to an external URL %q", path, m)
		}
		if strings.Contains(string(b), "@import") {
			t.Errorf("%s imports a stylesheet", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wasmLicences are the third-party modules that may be compiled into the
// served WebAssembly module, each with lines its licence text must bring
// into NOTICE (checked against the module's LICENSE in the module cache).
var wasmLicences = map[string][]string{
	"golang.org/x/crypto":              {"Copyright 2009 The Go Authors.", "Neither the name of Google LLC"},
	"golang.org/x/sys":                 {"Copyright 2009 The Go Authors.", "Neither the name of Google LLC"},
	"github.com/cloudflare/circl":      {"Copyright (c) 2019 Cloudflare. All rights reserved.", "Neither the name of Cloudflare", "Copyright (c) 2009 The Go Authors. All rights reserved.", "Copyright (c) 2018, Brendan McMillion. All rights reserved."},
	"github.com/bwesterb/go-ristretto": {"MIT License", "Copyright (c) 2021 Bas Westerbaan"},
}

// TestCreditsAndAPIInOnePlace: the page's credits link (NOTICE) credits the
// GOV.UK Design System and everything compiled into the WebAssembly module
// the page runs — the Go runtime and every third-party module, found by the
// module@version paths the served signpost.wasm records — with its version
// and licence text; and the API the page assumes is named once.
func TestCreditsAndAPIInOnePlace(t *testing.T) {
	b, err := fs.ReadFile(FS, "NOTICE")
	if err != nil {
		t.Fatal(err)
	}
	notice := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{"GOV.UK Design System", "MIT License", "Copyright (C) 2017 Crown Copyright (Government Digital Service)", "Go runtime and standard library"} {
		if !strings.Contains(notice, want) {
			t.Errorf("NOTICE lacks %q", want)
		}
	}
	doc, _ := parsePage(t)
	if !slices.ContainsFunc(elements(doc, "a"), func(a *html.Node) bool { return attr(a, "href") == "NOTICE" && strings.Contains(text(a), "licences") }) {
		t.Error("the page has no credits and licences link to NOTICE")
	}
	mod, err := fs.ReadFile(wasm.WebFS, "signpost.wasm")
	if err != nil {
		t.Fatal(err)
	}
	// -trimpath leaves module@version/file paths in the module's tables.
	found := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z0-9.-]+\.[a-z]+(?:/[A-Za-z0-9_.-]+)+)@(v[0-9][A-Za-z0-9.+-]*)/`).FindAllSubmatch(mod, -1) {
		found[string(m[1])] = string(m[2])
	}
	if len(found) == 0 {
		t.Fatal("no module@version paths in signpost.wasm: the check cannot see what is compiled in")
	}
	for path, version := range found {
		lines, known := wasmLicences[path]
		if !known {
			t.Errorf("signpost.wasm contains %s %s: credit it and its licence in NOTICE, and list it in wasmLicences", path, version)
			continue
		}
		if !strings.Contains(notice, path+" "+version) {
			t.Errorf("NOTICE does not name %s %s, which signpost.wasm contains", path, version)
		}
		for _, l := range lines {
			if !strings.Contains(notice, l) {
				t.Errorf("NOTICE lacks %q from the licence of %s", l, path)
			}
		}
	}
	js, _ := fs.ReadFile(FS, "app.js")
	for _, p := range []string{`"/v1/session"`, `"/v1/tokens/evaluate"`, `"/v1/lookup"`, `"/v1/contact-requests"`, `"/v1/watch"`, `"/wasm/signpost.js"`} {
		if strings.Count(string(js), p) != 1 {
			t.Errorf("app.js should name %s exactly once (in the api object)", p)
		}
	}
	css, _ := fs.ReadFile(FS, "style.css")
	for _, want := range []string{"#ffdd00", "#d4351c", "#00703c", "19px", `"Helvetica Neue"`} {
		if !strings.Contains(string(css), want) {
			t.Errorf("style.css lacks %s", want)
		}
	}
}

// TestMain fails the run if a goroutine outlives the tests (the browser
// tests run Chromium through chromedp and an HTTP test server).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

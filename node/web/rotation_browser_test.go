package web

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// rotation is a key rotation's overlap as the fake node plays it: a newer
// key per purpose (epoch+1, asked by default; the evaluate answer lists
// both epochs) and the sealed entries under each lookup key.
type rotation struct {
	next  map[string]wasmtest.Dealt
	byKey map[string][]string // by the lookup key's bytes
}

// TestPageDuringRotation: while two keys of a purpose are in force, the
// page evaluates the number under each (naming the older epoch), looks up
// both lookup keys and merges: the school, re-published under the new key
// and still under the old, is listed once; the GP, found only under the
// old key, is listed too, and its contact request names the key it was
// found under; the watch covers both keys, with one "watching" notice.
func TestPageDuringRotation(t *testing.T) {
	d := pageDriver{t, browser(t)}
	f, url := startPage(t, false)
	next, err := wasmtest.Deal(rand.Reader, "safeguarding", epoch+1, 2, "node-home", "node-gp", "node-ed")
	if err != nil {
		t.Fatal(err)
	}
	old := f.keys["safeguarding"]
	// The same holders as startPage's (their keys come from the seed).
	sc, gpn, hm := newAgencyNode(t, school, 1), newAgencyNode(t, gp, 2), newAgencyNode(t, home, 4)
	rot := &rotation{next: map[string]wasmtest.Dealt{"safeguarding": next}, byKey: map[string][]string{}}
	put := func(a agencyNode, d wasmtest.Dealt) string {
		k, e := a.entryAt(t, d, "9990000018", "safeguarding")
		rot.byKey[string(k[:])] = append(rot.byKey[string(k[:])], e)
		return base64.StdEncoding.EncodeToString(k[:])
	}
	oldKey := put(sc, old)
	put(gpn, old)
	put(hm, old)
	newKey := put(sc, next)
	put(hm, next)
	f.mu.Lock()
	f.rotated = rot
	f.mu.Unlock()

	d.signIn(url)
	d.step("search", chromedp.SendKeys(chromedp.CSS("#nhs-number"), "9990000018"), chromedp.Click(chromedp.CSS("#search-button")))
	d.waitFor("both holders", `document.querySelectorAll("#results-body tr").length === 2`)
	d.ownAgencyApart(2)
	rows := d.text("#results-body")
	if strings.Count(rows, "Request contact from Riverside Primary School") != 1 || strings.Count(rows, "Request contact from Elm Street Surgery") != 1 {
		t.Fatalf("rows %q: want the school and the GP once each", rows)
	}
	f.mu.Lock()
	var asked []string
	for _, l := range f.lookups {
		asked = append(asked, l["lookupKey"])
	}
	f.mu.Unlock()
	if len(asked) != 2 || asked[0] != newKey || asked[1] != oldKey {
		t.Fatalf("lookups %v, want the new key then the old", asked)
	}
	var evaluations []string
	f.mu.Lock()
	for _, s := range f.seen {
		if strings.Contains(s, "/v1/tokens/evaluate") {
			evaluations = append(evaluations, s)
		}
	}
	f.mu.Unlock()
	if len(evaluations) != 2 || strings.Contains(evaluations[0], `"epoch"`) || !strings.Contains(evaluations[1], `"epoch":202611`) {
		t.Fatalf("evaluations %q: want the default key, then epoch 202611 by name", evaluations)
	}

	// Contact the GP: the request names the old key, where it was found.
	d.step("request contact", chromedp.Click(chromedp.CSS(`#results-body tr:nth-child(2) button`)))
	d.waitFor("the contact answer", `document.getElementById("results-body").textContent.includes("Request sent")`)
	f.mu.Lock()
	if len(f.contacts) != 1 {
		f.mu.Unlock()
		t.Fatalf("contact requests %v", f.contacts)
	}
	c := f.contacts[0]
	f.mu.Unlock()
	want := map[string]string{"node-gp": oldKey, "node-school": newKey}[c["nodeId"]]
	if c["lookupKey"] != want {
		t.Fatalf("contact request to %s named %s, want %s", c["nodeId"], c["lookupKey"], want)
	}

	d.step("watch", chromedp.Click(chromedp.CSS("#watch-button")))
	d.waitFor("watching", `document.getElementById("notices").textContent.includes("You will be told here")`)
	d.waitFor("both keys watched", `document.getElementById("watch-button").textContent.includes("Watching")`)
	f.mu.Lock()
	watches := f.watches
	f.mu.Unlock()
	if watches != 2 {
		t.Fatalf("%d keys watched, want 2", watches)
	}
	if n := strings.Count(d.text("#notices"), "You will be told here"); n != 1 {
		t.Fatalf("%d 'watching' notices, want 1", n)
	}
}

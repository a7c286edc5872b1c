package wasm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// browserTestPage loads the module through the loader and exposes hex
// helpers; window.spReady resolves once it is initialised.
const browserTestPage = `<!doctype html>
<meta charset="utf-8">
<title>signpost wasm test</title>
<script type="module">
import { load } from "/static/signpost.js";
window.hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
window.unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16)));
window.spReady = load().then((sp) => { window.sp = sp; return true; });
</script>`

// startBrowser serves WebFS and the test page on 127.0.0.1 and opens it in
// headless Chromium. It skips only when Chromium is missing outside CI.
func startBrowser(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(testutil.ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s and CI=true: the browser test must run in CI (.ci/run installs it)", testutil.ChromiumPath)
		}
		t.Skipf("chromium not found at %s: browser test skipped (it runs in CI, where .ci/run installs Debian's chromium)", testutil.ChromiumPath)
	}
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(WebFS)))
	mux.HandleFunc("/test.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(browserTestPage))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	bctx := testutil.Chromium(t)
	nctx, cancelN := context.WithTimeout(bctx, browserActionTimeout)
	defer cancelN()
	if err := chromedp.Do(nctx, chromedp.Navigate(srv.URL+"/test.html")); err != nil {
		t.Fatalf("open the test page in chromium: %v", err)
	}
	if !evalJS[bool](t, bctx, `window.spReady`) {
		t.Fatal("module did not initialise in chromium")
	}
	return bctx
}

// browserActionTimeout bounds each browser action, so a hung Chromium fails
// the test instead of stalling the run. It is per action, not per session:
// the Go side of a test (compiling the module under -race on a loaded
// machine took most of a minute) must not eat the browser's budget.
const browserActionTimeout = 90 * time.Second

func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

func jsStrings(xs []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(x) + `"`)
	}
	b.WriteByte(']')
	return b.String()
}

func hexes(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = hex.EncodeToString(b)
	}
	return out
}

// TestBrowserAgreesWithNativeAndWazero is the acceptance test: the module in
// headless Chromium validates like wazero, blinds randomly, and its tokens
// (browser blinds, Go issuer evaluates, browser finalizes) equal the tokens
// of the native client and of the module under wazero.
func TestBrowserAgreesWithNativeAndWazero(t *testing.T) {
	ctx := startBrowser(t)
	r := newTestRuntime(t, Config{Instances: 1})
	iss := newTestIssuer(t)
	const purpose, epoch = "safeguarding", 202611

	// Validation: same results as wazero, including reasons.
	inputs := []string{"999 000 0018", "9990000019", "999000001", "٩٩٩٠٠٠٠٠١٨", "0000000000", "9991234560"}
	got := evalJS[[]Result](t, ctx, `sp.validate("nhs", `+jsStrings(inputs)+`)`)
	want, err := r.ValidateBatch(context.Background(), "nhs", inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("browser returned %d results for %d inputs", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("input %d: browser %+v, wazero %+v", i, got[i], want[i])
		}
	}

	// Tokens: the browser blinds, the Go issuer evaluates, the browser finalizes.
	blinded := evalJS[[]string](t, ctx, `(() => { window.b = sp.blind("nhs", `+jsStrings(synthetic)+`); return window.b.blinded.map(hex); })()`)
	again := evalJS[[]string](t, ctx, `sp.blind("nhs", `+jsStrings(synthetic)+`).blinded.map(hex)`)
	if len(blinded) != len(synthetic) || blinded[0] == again[0] {
		t.Fatal("two browser blindings of the same input are equal")
	}
	raw := make([][]byte, len(blinded))
	for i, h := range blinded {
		if raw[i], err = hex.DecodeString(h); err != nil {
			t.Fatal(err)
		}
	}
	evaluated, proof, err := iss.Evaluate(purpose, epoch, raw)
	if err != nil {
		t.Fatal(err)
	}
	finalize := func(pur string, proof []byte) string {
		return `sp.finalize(window.b, unhex("` + hex.EncodeToString(iss.PublicKey()) + `"), "` + pur + `", ` +
			"202611" + `, ` + jsStrings(hexes(evaluated)) + `.map(unhex), unhex("` + hex.EncodeToString(proof) + `"))`
	}
	browserToks := evalJS[[]struct{ Token, LookupKey, SealKey string }](t, ctx, finalize(purpose, proof)+`.map((t) => ({Token: hex(t.token), LookupKey: hex(t.lookupKey), SealKey: hex(t.sealKey)}))`)

	wazeroToks, err := r.Tokens(context.Background(), iss.Evaluator(), "nhs", synthetic, purpose, epoch)
	if err != nil {
		t.Fatal(err)
	}
	native := nativeTokens(t, iss, synthetic, purpose, epoch)
	for i := range synthetic {
		b := browserToks[i]
		if b.Token != hex.EncodeToString(wazeroToks[i].Token) || b.Token != hex.EncodeToString(native[i]) {
			t.Errorf("number %d: browser, wazero and native tokens differ", i)
		}
		if b.LookupKey != hex.EncodeToString(wazeroToks[i].LookupKey[:]) || b.SealKey != hex.EncodeToString(wazeroToks[i].SealKey[:]) {
			t.Errorf("number %d: browser and wazero derived keys differ", i)
		}
	}
	// Different purpose: unrelated tokens.
	direct, err := r.Tokens(context.Background(), iss.Evaluator(), "nhs", synthetic, "direct-care", epoch)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := hex.DecodeString(browserToks[0].Token); bytes.Equal(b, direct[0].Token) {
		t.Error("purpose did not change the token")
	}
	// Tampered proof and wrong purpose are rejected in the browser too.
	bad := bytes.Clone(proof)
	bad[5] ^= 1
	for _, tc := range []struct{ name, expr string }{
		{"tampered proof", finalize(purpose, bad)},
		{"other purpose", finalize("direct-care", proof)},
	} {
		code := evalJS[string](t, ctx, `(() => { try { `+tc.expr+`; return "accepted"; } catch (e) { return e.code; } })()`)
		if code != "proof_invalid" {
			t.Errorf("%s: browser says %q, want proof_invalid", tc.name, code)
		}
	}
	for _, tc := range []struct{ name, expr, want string }{
		{"unknown scheme", `sp.validate("passport", ["1"])`, "unknown_scheme"},
		{"invalid number", `sp.blind("nhs", ["9990000019"])`, "invalid_number"},
		{"bad purpose", finalize("Direct Care", proof), "invalid_purpose"},
	} {
		code := evalJS[string](t, ctx, `(() => { try { `+tc.expr+`; return "accepted"; } catch (e) { return e.code; } })()`)
		if code != tc.want {
			t.Errorf("%s: browser says %q, want %q", tc.name, code, tc.want)
		}
	}
	// Opening entries: the browser, with the seal key it derived itself,
	// agrees with wazero entry by entry.
	oc := newOpenCase()
	seal := wazeroToks[0].SealKey
	forger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	entries := [][]byte{
		oc.entry(t, "node-school", oc.nodeKey, seal, false, 1),
		oc.entry(t, "node-school", forger, seal, false, 2),
		oc.entry(t, "node-police", oc.nodeKey, seal, false, 3),
		oc.entry(t, "node-school", oc.nodeKey, oc.seal, false, 4),
		oc.entry(t, "node-school", oc.nodeKey, seal, true, 5),
		[]byte("c2VhbGVk"),
		oc.entryVia(t, "node-clinic", oc.nodeKey, seal, false, 6, "node-gp"),
		oc.entryVia(t, "node-clinic", oc.nodeKey, seal, true, 7, "node-gp"),
	}
	wantOpen, err := r.OpenEntries(context.Background(), seal, entries, oc.members)
	if err != nil {
		t.Fatal(err)
	}
	members := `[` + strings.Join([]string{
		`{nodeId: "node-school", publicKey: unhex("` + hex.EncodeToString(oc.members[0].PublicKey) + `")}`,
		`{nodeId: "node-gp", publicKey: unhex("` + hex.EncodeToString(oc.members[1].PublicKey) + `")}`,
	}, ",") + `]`
	type jsOpened struct {
		OK           bool
		NodeID       string
		Broker       string
		Inner        string
		Category     string
		RegisteredAt int64
		Withdrawn    bool
		Error        string
	}
	gotOpen := evalJS[[]jsOpened](t, ctx, `sp.openEntries(unhex("`+hex.EncodeToString(seal[:])+`"), `+jsStrings(hexes(entries))+`.map(unhex), `+members+`)`+
		`.map((o) => ({OK: o.ok, NodeID: o.nodeId || "", Broker: o.broker || "", Inner: o.inner ? [...o.inner].map((b) => b.toString(16).padStart(2, "0")).join("") : "", Category: o.category || "", RegisteredAt: o.registeredAt || 0, Withdrawn: !!o.withdrawn, Error: o.error || ""}))`)
	codes := map[error]string{nil: "", ErrHolderSignature: "holder_signature", ErrUnknownHolder: "unknown_holder", ErrSealBroken: "seal_broken", ErrEntryMalformed: "malformed"}
	if len(gotOpen) != len(wantOpen) {
		t.Fatalf("browser opened %d entries, wazero %d", len(gotOpen), len(wantOpen))
	}
	for i, w := range wantOpen {
		g := gotOpen[i]
		if g.OK != (w.Err == nil) || g.Error != codes[w.Err] || g.NodeID != w.NodeID || g.Broker != w.Broker || g.Inner != hex.EncodeToString(w.Inner) || g.Category != w.Category || g.Withdrawn != w.Withdrawn || (w.Err == nil && g.RegisteredAt != w.RegisteredAt.Unix()) {
			t.Errorf("entry %d: browser %+v, wazero %+v", i, g, w)
		}
	}
	if wantOpen[0].Err != nil || wantOpen[0].NodeID != "node-school" {
		t.Errorf("good entry did not open: %+v", wantOpen[0])
	}
	if w := wantOpen[6]; w.Err != nil || w.Broker != "node-gp" || w.NodeID != "" || w.Category != "" {
		t.Errorf("shielded entry opened as %+v", w)
	}
	if code := evalJS[string](t, ctx, `(() => { try { sp.openEntries(new Uint8Array(31), [], []); return "accepted"; } catch (e) { return e.code; } })()`); code != "malformed" {
		t.Errorf("short seal key: browser says %q, want malformed", code)
	}
	// The browser instance still works after the refusals.
	if !evalJS[bool](t, ctx, `sp.validate("nhs", ["9990000018"])[0].valid`) {
		t.Error("browser instance broken after refusals")
	}
}

// TestShimCoversModuleImports checks that web/wasi.js implements every WASI
// function the module imports, so the browser shim cannot fall behind a
// toolchain upgrade unnoticed.
func TestShimCoversModuleImports(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	shim, err := webFiles.ReadFile("web/wasi.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.main.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != "wasi_snapshot_preview1" {
			t.Errorf("module imports %s.%s, which no shim provides", mod, name)
			continue
		}
		if !regexp.MustCompile(`\b` + name + `: \(`).Match(shim) {
			t.Errorf("web/wasi.js lacks %s", name)
		}
	}
}

// BenchmarkClientChromium is blind + finalize per token in headless Chromium
// (the issuer's evaluation is done once, outside the timed loops). The loops
// run inside the page; ns/token is the page's own measurement.
func BenchmarkClientChromium(b *testing.B) {
	ctx := startBrowser(b)
	iss := newTestIssuer(b)
	num := GenerateTestNumbers(2, 1)
	blinded := evalJS[[]string](b, ctx, `(() => { window.b = sp.blind("nhs", `+jsStrings(num)+`); return window.b.blinded.map(hex); })()`)
	raw, _ := hex.DecodeString(blinded[0])
	ev, proof, err := iss.Evaluate("safeguarding", 1, [][]byte{raw})
	if err != nil {
		b.Fatal(err)
	}
	setup := `window.fin = [unhex("` + hex.EncodeToString(iss.PublicKey()) + `"), [unhex("` + hex.EncodeToString(ev[0]) + `")], unhex("` + hex.EncodeToString(proof) + `")]; true`
	evalJS[bool](b, ctx, setup)
	n := max(b.N, 20)
	b.ResetTimer()
	ms := evalJS[float64](b, ctx, `(() => {
		const n = `+strconv.Itoa(n)+`, num = `+jsStrings(num)+`;
		const t0 = performance.now();
		for (let i = 0; i < n; i++) sp.blind("nhs", num);
		const t1 = performance.now();
		for (let i = 0; i < n; i++) sp.finalize(window.b, window.fin[0], "safeguarding", 1, window.fin[1], window.fin[2]);
		return performance.now() - t0 + 0 * t1;
	})()`)
	b.ReportMetric(ms*1e6/float64(n), "ns/token")
}

// jsKeySet renders a key set as the loader's combine takes it.
func jsKeySet(ks KeySet) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{purpose: %q, epoch: %d, t: %d, groupKey: unhex("%x"), shares: [`, ks.Purpose, ks.Epoch, ks.T, ks.GroupKey)
	for i, s := range ks.Shares {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{index: %d, nodeId: %q, key: unhex("%x")}`, s.Index, s.NodeID, s.Key)
	}
	b.WriteString(`]}`)
	return b.String()
}

// jsPartials renders partial evaluations as the loader's combine takes them.
func jsPartials(ps []Partial) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{index: %d, proof: unhex("%x"), evaluated: %s.map(unhex)}`, p.Index, p.Proof, jsStrings(hexes(p.Evaluated)))
	}
	b.WriteByte(']')
	return b.String()
}

// TestBrowserThresholdAgrees is the acceptance test of the threshold token
// function in a real browser: headless Chromium blinds (VOPRF mode), Go
// share issuers evaluate, and the combine runs inside the module in the
// page. For every t-subset the page's tokens and keys equal circl's VOPRF
// for k, the module under wazero and the native client; the page refuses
// t partials with one forged, uses the t valid ones of t+1, and refuses a
// bad key set.
func TestBrowserThresholdAgrees(t *testing.T) {
	ctx := startBrowser(t)
	r := newTestRuntime(t, Config{Instances: 1})
	f := newThresholdFixture(t, seededReader(t), 2, 3, "safeguarding", 202611)
	want := f.circl(t, synthetic)

	blinded := evalJS[[]string](t, ctx, `(() => { window.tb = sp.blindThreshold("nhs", `+jsStrings(synthetic)+`); return window.tb.blinded.map(hex); })()`)
	again := evalJS[[]string](t, ctx, `sp.blindThreshold("nhs", `+jsStrings(synthetic)+`).blinded.map(hex)`)
	if len(blinded) != len(synthetic) || blinded[0] == again[0] {
		t.Fatal("two browser threshold blindings of the same input are equal")
	}
	raw := make([][]byte, len(blinded))
	for i, h := range blinded {
		var err error
		if raw[i], err = hex.DecodeString(h); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]Partial, len(f.issuers))
	for i, iss := range f.issuers {
		p, err := iss.Partial(raw)
		if err != nil {
			t.Fatal(err)
		}
		all[i] = p
	}
	type jsToken struct{ Token, LookupKey, SealKey string }
	combine := func(ks KeySet, ps []Partial) string {
		return `sp.combine(window.tb, ` + jsKeySet(ks) + `, ` + jsPartials(ps) + `)`
	}
	tokens := func(ks KeySet, ps []Partial) []jsToken {
		return evalJS[[]jsToken](t, ctx, combine(ks, ps)+`.map((t) => ({Token: hex(t.token), LookupKey: hex(t.lookupKey), SealKey: hex(t.sealKey)}))`)
	}
	code := func(ks KeySet, ps []Partial) string {
		return evalJS[string](t, ctx, `(() => { try { `+combine(ks, ps)+`; return "accepted"; } catch (e) { return e.code; } })()`)
	}
	for _, sub := range allSubsets(3, 2) {
		ev := f.evaluator(sub, nil)
		mod, err := r.ThresholdTokens(context.Background(), ev, "nhs", synthetic, "safeguarding", 202611)
		if err != nil {
			t.Fatal(err)
		}
		nat, err := NativeThresholdTokens(context.Background(), nil, ev, "nhs", synthetic, "safeguarding", 202611)
		if err != nil {
			t.Fatal(err)
		}
		got := tokens(f.ks, []Partial{all[sub[0]-1], all[sub[1]-1]})
		for i := range synthetic {
			w := hex.EncodeToString(want[i])
			if got[i].Token != w || hex.EncodeToString(mod[i].Token) != w || hex.EncodeToString(nat[i].Token) != w {
				t.Fatalf("issuers %v, number %d: browser, wazero, native and circl tokens differ", sub, i)
			}
			if got[i].LookupKey != hex.EncodeToString(mod[i].LookupKey[:]) || got[i].SealKey != hex.EncodeToString(nat[i].SealKey[:]) {
				t.Fatalf("issuers %v, number %d: browser derived keys differ", sub, i)
			}
		}
	}
	// The Go types' JSON, base64 decoded in the page, is what the loader's
	// combine takes.
	ksJSON, err := json.Marshal(f.ks)
	if err != nil {
		t.Fatal(err)
	}
	psJSON, err := json.Marshal(all[1:])
	if err != nil {
		t.Fatal(err)
	}
	viaJSON := evalJS[string](t, ctx, `(() => {
		const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
		const ks = JSON.parse(`+strconv.Quote(string(ksJSON))+`), ps = JSON.parse(`+strconv.Quote(string(psJSON))+`);
		ks.groupKey = b64(ks.groupKey);
		ks.shares.forEach((s) => { s.key = b64(s.key); });
		ps.forEach((p) => { p.proof = b64(p.proof); p.evaluated = p.evaluated.map(b64); });
		return hex(sp.combine(window.tb, ks, ps)[0].token);
	})()`)
	if viaJSON != hex.EncodeToString(want[0]) {
		t.Error("the key set and partials as JSON do not give the token")
	}
	forged := slices.Clone(all)
	forged[0].Proof = bytes.Clone(forged[0].Proof)
	forged[0].Proof[9] ^= 1
	if c := code(f.ks, forged[:2]); c != "too_few_partials" {
		t.Errorf("t partials, one forged: browser says %q, want too_few_partials", c)
	}
	if got := tokens(f.ks, forged); got[0].Token != hex.EncodeToString(want[0]) {
		t.Error("t+1 partials, one forged: browser did not use the t valid ones")
	}
	bad := f.ks
	bad.T = 4
	if c := code(bad, all); c != "key_set" {
		t.Errorf("threshold above n: browser says %q, want key_set", c)
	}
	if !evalJS[bool](t, ctx, `sp.validate("nhs", ["9990000018"])[0].valid`) {
		t.Error("browser instance broken after refusals")
	}
}

// BenchmarkCombineChromium is the threshold client's verify-and-combine in
// headless Chromium, per token at batch 1, for t = 2, 3 and 5 (n = t): the
// loop runs inside the page and ns/token is the page's own measurement
// (performance.now, whose resolution Chromium coarsens to 0.1 ms; the loop
// runs at least 20 times).
func BenchmarkCombineChromium(b *testing.B) {
	ctx := startBrowser(b)
	num := GenerateTestNumbers(2, 1)
	blinded := evalJS[[]string](b, ctx, `(() => { window.tb = sp.blindThreshold("nhs", `+jsStrings(num)+`); return window.tb.blinded.map(hex); })()`)
	raw, _ := hex.DecodeString(blinded[0])
	rnd := mrand.NewChaCha8([32]byte{5})
	for _, th := range []int{2, 3, 5} {
		f := newThresholdFixture(b, rnd, th, th, "safeguarding", 1)
		var ps []Partial
		for _, iss := range f.issuers {
			p, err := iss.Partial([][]byte{raw})
			if err != nil {
				b.Fatal(err)
			}
			ps = append(ps, p)
		}
		b.Run(fmt.Sprintf("t=%d", th), func(b *testing.B) {
			evalJS[bool](b, ctx, `window.ks = `+jsKeySet(f.ks)+`; window.ps = `+jsPartials(ps)+`; true`)
			n := max(b.N, 20)
			b.ResetTimer()
			ms := evalJS[float64](b, ctx, `(() => {
				const t0 = performance.now();
				for (let i = 0; i < `+strconv.Itoa(n)+`; i++) sp.combine(window.tb, window.ks, window.ps);
				return performance.now() - t0;
			})()`)
			b.ReportMetric(ms*1e6/float64(n), "ns/token")
		})
	}
}

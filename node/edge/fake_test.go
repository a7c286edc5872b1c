package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/locator"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
	"github.com/signpost-federation/signpost/wasm/wasmtest"
)

// fakeNode answers /v1/tokens/evaluate and /v1/lookup as a node does, from
// keys dealt 2 of 3 (one per epoch: several during a rotation's overlap)
// with real wasm.ShareIssuers, and entries sealed and signed by real
// locator.Holders. It lets a test set up what the demo cannot: a rotation's
// overlap, and a node without rate limits for the benchmark.
type fakeNode struct {
	keys    map[uint32]wasmtest.Dealt
	entries map[[16]byte][]string // base64 sealed entries by lookup key
	members []map[string]string
	self    string
	// onLookup, if set, is called before each lookup is answered. Atomic:
	// a test clears it while a cancelled run's last lookups may still be
	// answered.
	onLookup atomic.Pointer[func()]
}

func newFakeNode(t testing.TB, seed uint64, epochs ...uint32) *fakeNode {
	t.Helper()
	f := &fakeNode{keys: map[uint32]wasmtest.Dealt{}, entries: map[[16]byte][]string{}, self: "node-home"}
	rnd := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	for _, e := range epochs {
		d, err := wasmtest.Deal(rnd, purpose, e, 2, "node-home", "node-b", "node-c")
		if err != nil {
			t.Fatal(err)
		}
		f.keys[e] = d
	}
	return f
}

// newest is the current epoch.
func (f *fakeNode) newest() uint32 { return slices.Max(slices.Collect(mapsKeys(f.keys))) }

func mapsKeys(m map[uint32]wasmtest.Dealt) func(func(uint32) bool) {
	return func(yield func(uint32) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dealtEvaluator evaluates in process with a dealt key's first t shares.
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

// agency is a holder of the fake federation.
type agency struct {
	id, name string
	holder   *locator.Holder
}

func (f *fakeNode) addAgency(t testing.TB, id, name string, seed byte) agency {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	h, err := locator.NewHolder(id, key, [32]byte{seed})
	if err != nil {
		t.Fatal(err)
	}
	f.members = append(f.members, map[string]string{"nodeId": id, "agency": name, "category": "gp",
		"publicKey": base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))})
	return agency{id: id, name: name, holder: h}
}

// publish stores a's entries for numbers under epoch's key, registered at
// since.
func (f *fakeNode) publish(t testing.TB, a agency, epoch uint32, since time.Time, numbers ...string) {
	t.Helper()
	toks, err := wasm.NativeThresholdTokens(context.Background(), nil, dealtEvaluator{f.keys[epoch]}, scheme, numbers, purpose, epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		e, err := a.holder.Publish(tok.LookupKey, tok.SealKey, "gp", 1, since, since.Add(24*365*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f.entries[tok.LookupKey] = append(f.entries[tok.LookupKey], base64.StdEncoding.EncodeToString(e.Encode()))
	}
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/tokens/evaluate":
		var req struct {
			Purpose string   `json:"purpose"`
			Epoch   uint32   `json:"epoch"`
			Blinded []string `json:"blinded"`
		}
		if httpx.DecodeJSON(w, r, 1<<20, &req) != nil {
			return
		}
		if req.Epoch == 0 {
			req.Epoch = f.newest()
		}
		d, ok := f.keys[req.Epoch]
		if !ok || req.Purpose != purpose {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeUnknownEpoch, "no such key")
			return
		}
		blinded := make([][]byte, len(req.Blinded))
		for i, s := range req.Blinded {
			blinded[i], _ = base64.StdEncoding.DecodeString(s)
		}
		var partials []map[string]any
		for _, i := range []int{0, 2} { // issuers 1 and 3: non-trivial Lagrange coefficients
			ev, proof, err := d.Issuers[i].Evaluate(blinded)
			if err != nil {
				httpx.WriteError(w, http.StatusBadRequest, httpx.CodeEvaluationFailed, "cannot evaluate")
				return
			}
			evs := make([]string, len(ev))
			for j, e := range ev {
				evs[j] = base64.StdEncoding.EncodeToString(e)
			}
			sh := d.KeySet.Shares[i]
			partials = append(partials, map[string]any{"issuer": sh.NodeID, "index": sh.Index, "publicShare": base64.StdEncoding.EncodeToString(sh.Key),
				"evaluated": evs, "proof": base64.StdEncoding.EncodeToString(proof)})
		}
		epochs := slices.Sorted(mapsKeys(f.keys))
		slices.Reverse(epochs)
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"purpose": purpose, "epoch": req.Epoch, "t": d.KeySet.T,
			"groupKey": base64.StdEncoding.EncodeToString(d.KeySet.GroupKey), "partials": partials, "epochs": epochs})
	case "/v1/lookup":
		var req struct{ LookupKey, Purpose string }
		if httpx.DecodeJSON(w, r, 4<<10, &req) != nil {
			return
		}
		b, err := base64.RawURLEncoding.DecodeString(req.LookupKey)
		if err != nil || len(b) != 16 {
			httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidLookupKey, "bad key")
			return
		}
		if fn := f.onLookup.Load(); fn != nil {
			(*fn)()
		}
		entries := f.entries[[16]byte(b)]
		if entries == nil {
			entries = []string{}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"entries": entries, "members": f.members, "self": f.self})
	default:
		http.NotFound(w, r)
	}
}

// TestRotationOverlap: with two keys in force, a number is evaluated and
// looked up under both and the answers merged, as POST /v1/locate merges
// them: an agency found under the old key only is listed, one found under
// both once (as the newest key shows it), the asking node's own entry under
// the old key sets selfHolds.
func TestRotationOverlap(t *testing.T) {
	seed := testutil.Seed(t)
	f := newFakeNode(t, seed, 202611, 202612)
	home := f.addAgency(t, f.self, "Home", 1)
	oldOnly := f.addAgency(t, "node-old", "Old Key Only", 2)
	newOnly := f.addAgency(t, "node-new", "New Key Only", 3)
	both := f.addAgency(t, "node-both", "Both Keys", 4)
	nums := wasm.GenerateTestNumbers(seed, 2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.publish(t, home, 202611, t0, nums[0])
	f.publish(t, oldOnly, 202611, t0, nums[0])
	f.publish(t, newOnly, 202612, t0.Add(time.Hour), nums[0])
	f.publish(t, both, 202611, t0, nums[0])
	f.publish(t, both, 202612, t0.Add(2*time.Hour), nums[0])
	srv := httptest.NewServer(f)
	defer srv.Close()

	rt, err := wasm.New(context.Background(), wasm.Config{Instances: 2, CompileOnUse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	c, err := New(rt, Config{Node: srv.URL, Purpose: purpose, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Locate(context.Background(), nums)
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{
		{Status: StatusFound, SelfHolds: true, Holders: []Holder{
			{NodeID: "node-both", Agency: "Both Keys", Category: "gp", Since: t0.Add(2 * time.Hour)},
			{NodeID: "node-new", Agency: "New Key Only", Category: "gp", Since: t0.Add(time.Hour)},
			{NodeID: "node-old", Agency: "Old Key Only", Category: "gp", Since: t0},
		}},
		{Status: StatusNone},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines", len(got))
	}
	for i := range want {
		if got[i].Status != want[i].Status || got[i].SelfHolds != want[i].SelfHolds || !holdersEqual(got[i].Holders, want[i].Holders) {
			t.Errorf("line %d: %+v, want %+v", i+1, got[i], want[i])
		}
	}
}

// TestInterrupted: a run interrupted part way (its context cancelled, as
// Ctrl-C does) exits 1 having written a prefix of the answers, and a run
// started again with the same resume file writes exactly the rest: the
// two outputs, appended, are a whole run's, no line twice.
func TestInterrupted(t *testing.T) {
	seed := testutil.Seed(t)
	f := newFakeNode(t, seed, 202611)
	gp := f.addAgency(t, "node-gp", "GP", 2)
	nums := wasm.GenerateTestNumbers(seed, 40)
	f.publish(t, gp, 202611, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nums[:15]...)
	srv := httptest.NewServer(f)
	defer srv.Close()
	lines := slices.Insert(slices.Clone(nums), 20, "12345", "")
	stdin := strings.Join(lines, "\n")
	args := []string{"--node", srv.URL, "--purpose", purpose, "--json", "--batch", "8"}

	whole := runCLI(context.Background(), "t", nil, stdin, args...)
	if whole.code != 1 || strings.Count(whole.stdout, "\n") != len(lines) {
		t.Fatalf("whole run: exit %d, %d lines for %d", whole.code, strings.Count(whole.stdout, "\n"), len(lines))
	}
	path := filepath.Join(t.TempDir(), "resume")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	n := 0
	onLookup := func() {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 31 { // jobs of 8 lines (6 valid in the third): job 5 has begun, so (two at a time) three are done
			cancel()
		}
	}
	f.onLookup.Store(&onLookup)
	first := runCLI(ctx, "t", nil, stdin, append(args, "--resume", path)...)
	f.onLookup.Store(nil)
	if first.code != 1 || !strings.Contains(first.stderr, "interrupted") {
		t.Fatalf("interrupted run: exit %d, stderr %q", first.code, first.stderr)
	}
	if first.stdout == "" || len(first.stdout) >= len(whole.stdout) || !strings.HasPrefix(whole.stdout, first.stdout) {
		t.Fatalf("the interrupted run wrote\n%s\nnot a part of a whole run's\n%s", first.stdout, whole.stdout)
	}
	second := runCLI(context.Background(), "t", nil, stdin, append(args, "--resume", path)...)
	if first.stdout+second.stdout != whole.stdout {
		t.Errorf("interrupted + resumed output\n%s\nwant\n%s", first.stdout+second.stdout, whole.stdout)
	}
}

// BenchmarkLocate is the client's own throughput, numbers a second,
// against a node without rate limits that evaluates natively in process
// (two issuers' partials with proofs, as a node's issuers do): a tenth of
// the numbers are held by one agency. Run with -benchtime=10000x for the
// figure in docs/BENCHMARKS.md.
func BenchmarkLocate(b *testing.B) {
	f := newFakeNode(b, 1, 202611)
	gp := f.addAgency(b, "node-gp", "GP", 2)
	nums := wasm.GenerateTestNumbers(1, max(b.N, 10))
	f.publish(b, gp, 202611, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nums[:len(nums)/10]...)
	srv := httptest.NewServer(f)
	defer srv.Close()
	rt, err := wasm.New(context.Background(), wasm.Config{Instances: runtime.GOMAXPROCS(0), CompileOnUse: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	c, err := New(rt, Config{Node: srv.URL, Purpose: purpose, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Locate(context.Background(), nums[:1]); err != nil { // compile the module outside the timing
		b.Fatal(err)
	}
	lines := strings.Join(nums[:b.N], "\n")
	b.ResetTimer()
	var out bytes.Buffer
	r := &run{c: c, out: bufio.NewWriter(&out), stderr: &bytes.Buffer{}, now: time.Now}
	if code := r.do(context.Background(), strings.Split(lines, "\n")); code != 0 {
		b.Fatalf("exit %d", code)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "numbers/s")
	var found int
	for l := range strings.Lines(out.String()) {
		if strings.HasPrefix(l, "found") {
			found++
		}
	}
	if want := min(b.N, len(nums)/10); found != want {
		b.Fatalf("%d numbers found, %d are held", found, want)
	}
}

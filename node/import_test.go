package node

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/csvrec"
)

// importCase is a CSV with one malformed row among good ones.
type importCase struct {
	name     string
	csv      string
	imported []string // local ids that must be stored
	badLines []int    // lines reported as malformed_csv
}

// quotingCases put a quoting error between good rows. Each must lose no good
// row: encoding/csv resumes after an error confined to a line, and a quote
// that opens a field and never closes it costs its own line only.
var quotingCases = []importCase{
	{"bare quote", "r1,9990000018\nr2,9990000026\nr3,999000\"0034\nr4,9990000042\n",
		[]string{"r1", "r2", "r4"}, []int{3}},
	{"stray quote after quoted field", "localId,nhsNumber\nr1,9990000018\nr2,9990000026\nr3,\"9990000034\"x\nr4,9990000042\n",
		[]string{"r1", "r2", "r4"}, []int{4}},
	{"unclosed quote", "r1,9990000018\nr2,9990000026\nr3,\"9990000034\nr4,9990000042\nr5,9990000050\n",
		[]string{"r1", "r2", "r4", "r5"}, []int{3}},
	{"unclosed quote on the last line", "r1,9990000018\nr2,\"9990000026",
		[]string{"r1"}, []int{2}},
	{"quoted field over two lines, then a stray quote", "r1,9990000018\nr2,\"99900\n00026\"x,cin\nr4,9990000042\n",
		[]string{"r1", "r4"}, []int{2, 3}},
	{"two bad rows in a row", "r1,9990000018\nr2,\"x\"y\nr3,\"9990000026\nr4,9990000042\n",
		[]string{"r1", "r4"}, []int{2, 3}},
	{"quoting error on the header line", "local\"Id,nhsNumber\nr1,9990000018\n",
		[]string{"r1"}, []int{1}},
}

func TestImportGoesOnAfterQuotingError(t *testing.T) {
	for _, tc := range quotingCases {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestNode(t, newFakeFed(), "a", func(c *Config) { c.MaxBatch = 2 })
			rep, err := a.Import(context.Background(), strings.NewReader(tc.csv), "op", nil)
			if err != nil {
				t.Fatalf("import: %v (report %+v)", err, rep)
			}
			checkImport(t, a, tc, rep)
		})
	}
}

func TestImportAPIGoesOnAfterQuotingError(t *testing.T) {
	tc := quotingCases[0]
	a := newTestNode(t, newFakeFed(), "a", nil)
	r := a.do(t, "POST", "/v1/records/import", "op-token", tc.csv)
	if r.status != http.StatusOK {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	var rep ImportReport
	mustJSON(t, r.body, &rep)
	checkImport(t, a, tc, rep)
}

func TestImportFileGoesOnAfterQuotingError(t *testing.T) {
	for _, tc := range quotingCases {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestNode(t, newFakeFed(), "a", nil)
			rep, err := ImportFile(context.Background(), http.DefaultClient, a.srv.URL, "op-token", strings.NewReader(tc.csv), int64(len(tc.csv)), nil)
			if err != nil {
				t.Fatalf("import: %v (report %+v)", err, rep)
			}
			checkImport(t, a, tc, rep)
		})
	}
}

func checkImport(t *testing.T, a *testNode, tc importCase, rep ImportReport) {
	t.Helper()
	var lines []int
	for _, e := range rep.Errors {
		if e.Code != "malformed_csv" || e.Message == "" || strings.Contains(e.Message, "999") {
			t.Errorf("error %+v", e)
		}
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, tc.badLines) || rep.Failed != len(tc.badLines) || rep.Imported != len(tc.imported) {
		t.Fatalf("report %+v, want imported %v and bad lines %v", rep, tc.imported, tc.badLines)
	}
	for _, id := range tc.imported {
		if _, err := a.records.Get(id); err != nil {
			t.Errorf("record %s: %v", id, err)
		}
	}
	if got := a.count(t); got != len(tc.imported) {
		t.Errorf("store holds %d records, want %d", got, len(tc.imported))
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// A field holding a newline makes a row two lines long in the chunk the
// command sends; the lines the node reports must still map to the file's.
func TestImportFileMapsLinesAcrossNewlines(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	csv := "localId,nhsNumber\n" +
		"r1,9990000018\n" +
		"r2,\"999000\n0026\"\n" + // lines 3-4: a newline inside the number
		"r3,9990000013\n" + // line 5: wrong check digit
		"r4,9990000042\n"
	rep, err := ImportFile(context.Background(), http.DefaultClient, a.srv.URL, "op-token", strings.NewReader(csv), int64(len(csv)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range rep.Errors {
		lines = append(lines, e.Line)
	}
	if rep.Imported != 2 || !slices.Equal(lines, []int{3, 5}) {
		t.Fatalf("report %+v, want 2 imported and errors on lines 3 and 5", rep)
	}
}

// FuzzScanCSV checks that the scan ends, reports lines that exist in
// strictly increasing order, and that a record it reports as malformed is
// one encoding/csv also refuses when read from that line alone.
func FuzzScanCSV(f *testing.F) {
	for _, tc := range quotingCases {
		f.Add(tc.csv)
	}
	f.Add("a,b\r\n\r\n\"c\nd\",e\n\"\"\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		nlines := strings.Count(s, "\n") + 1
		prev := 0
		err := csvrec.Scan(strings.NewReader(s), func(rec []string, line int, bad *csv.ParseError) error {
			if line <= prev || line > nlines {
				t.Fatalf("line %d after %d (input has %d lines)", line, prev, nlines)
			}
			prev = line
			if bad != nil {
				if bad.StartLine != line || bad.Line < line || bad.Line > nlines {
					t.Fatalf("error %+v reported on line %d", bad, line)
				}
				from := strings.Join(strings.SplitAfter(s, "\n")[line-1:], "")
				cr := csv.NewReader(strings.NewReader(from))
				cr.FieldsPerRecord = -1
				if _, err := cr.Read(); err == nil {
					t.Fatalf("line %d reported malformed, but encoding/csv reads it", line)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// flakyTokenizer fails every Keys call after the first ok ones with err.
type flakyTokenizer struct {
	*fakeTokenizer
	mu  sync.Mutex
	ok  int
	err error
}

func (f *flakyTokenizer) Keys(ctx context.Context, ev Evaluator, purpose string, nums []string) ([]Keys, error) {
	f.mu.Lock()
	fail := f.ok <= 0
	f.ok--
	f.mu.Unlock()
	if fail {
		return nil, f.err
	}
	return f.fakeTokenizer.Keys(ctx, ev, purpose, nums)
}

// nodeWith builds a test node like newTestNode, from the parts given.
func nodeWith(t *testing.T, opt Options, mut func(*Config)) *testNode {
	t.Helper()
	tn := bareNode(t, opt, mut)
	tn.srv = httptest.NewServer(tn.Handler())
	t.Cleanup(tn.srv.Close)
	return tn
}

// manualNode is nodeWith whose outbox only the test drains (with
// n.pub.step), and whose tokenizer is a fakeTokenizer.
func manualNode(t *testing.T, opt Options, mut func(*Config)) *testNode {
	t.Helper()
	tok := &fakeTokenizer{}
	opt.Tokenizer = tok
	tn := newNode(t, opt, mut, false)
	tn.srv = httptest.NewServer(tn.Handler())
	t.Cleanup(tn.srv.Close)
	return tn
}

// bareNode is nodeWith without an HTTP server (which a synctest bubble
// cannot hold: a goroutine waiting on the network is not durably blocked).
func bareNode(t *testing.T, opt Options, mut func(*Config)) *testNode {
	t.Helper()
	return newNode(t, opt, mut, true)
}

// newNode is bareNode, with the background publisher if run.
func newNode(t *testing.T, opt Options, mut func(*Config), run bool) *testNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "a", "Agency a", "school", t.TempDir()
	if mut != nil {
		mut(&cfg)
	}
	if opt.Tokenizer == nil {
		opt.Tokenizer = &fakeTokenizer{}
	}
	if opt.Index == nil {
		opt.Index = newFakeFed().index("a", cfg.Agency)
	}
	if opt.Keyring == nil {
		opt.Keyring = soloKeyring(cfg.NodeID)
	}
	opt.Auth = tokens
	opt.Logger = slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	if err := n.start(run); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n}
	tn.tok, _ = opt.Tokenizer.(*fakeTokenizer)
	return tn
}

// published counts the live entries in a fake federation.
func (f *fakeFed) published() int { return f.countEntries(false) }

// withdrawn counts the tombstones in a fake federation.
func (f *fakeFed) withdrawn() int { return f.countEntries(true) }

// countEntries counts the entries whose Deleted flag is deleted.
func (f *fakeFed) countEntries(deleted bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.entries {
		for _, e := range m {
			if e.Deleted == deleted {
				n++
			}
		}
	}
	return n
}

// goodRows is a CSV of n good rows.
func goodRows(n int) string {
	var b strings.Builder
	for i, num := range syntheticNumbers(n) {
		fmt.Fprintf(&b, "row-%05d,%s,cin,\n", i, num)
	}
	return b.String()
}

// sizeHidden hides a reader's length, so that the client sends the body
// chunked, without Content-Length.
type sizeHidden struct{ io.Reader }

// A rejected import writes nothing: not the rows read before the limit.
func TestRejectedImportWritesNothing(t *testing.T) {
	big := goodRows(60) // about 1.7 KB
	tests := []struct {
		name   string
		tok    Tokenizer
		body   io.Reader
		status int
		code   string
	}{
		{"over max_import_bytes, with Content-Length", nil, strings.NewReader(big), 413, "too_large"},
		{"over max_import_bytes, chunked", nil, sizeHidden{strings.NewReader(big)}, 413, "too_large"},
		{"too many rows", nil, strings.NewReader(goodRows(MaxImportRows + 1)), 413, "too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fed := newFakeFed()
			a := nodeWith(t, Options{Tokenizer: tc.tok, Index: fed.index("a", "Agency a")}, func(c *Config) {
				c.MaxBatch = 4
				c.MaxImportBytes = 1024
				if tc.name == "too many rows" {
					c.MaxImportBytes = 64 << 20
				}
			})
			req, _ := http.NewRequest("POST", a.srv.URL+"/v1/records/import", tc.body)
			req.Header.Set("Authorization", "Bearer op-token")
			r := send(t, http.DefaultClient, req)
			if a.count(t) != 0 || fed.published() != 0 {
				t.Errorf("%d records stored and %d entries published by a rejected import", a.count(t), fed.published())
			}
			if r.status != tc.status || r.errCode() != tc.code || !strings.Contains(r.body, "nothing was imported") {
				t.Errorf("got %d %s, want %d %s saying nothing was imported", r.status, r.body, tc.status, tc.code)
			}
		})
	}
}

// An import that succeeds answers 200 with every row accounted for, even
// when the issuer is called many times (MaxBatch rows at a time).
func TestImportCommitsEveryBatch(t *testing.T) {
	fed := newFakeFed()
	a := nodeWith(t, Options{Index: fed.index("a", "Agency a")}, func(c *Config) { c.MaxBatch = 4 })
	r := a.do(t, "POST", "/v1/records/import", "op-token", goodRows(13)+"bad,1\n")
	var rep ImportReport
	mustJSON(t, r.body, &rep)
	if r.status != 200 || rep.Imported != 13 || rep.Failed != 1 || a.count(t) != 13 || fed.published() != 13*2 {
		t.Fatalf("got %d %+v, %d records, %d entries", r.status, rep, a.count(t), fed.published())
	}
}

// An import the issuer goes away during is committed whole: the batches
// tokenised before are published, the rest wait in the outbox (202, with
// "queued"), and go out once the issuer is back. A tokenizer failing for
// another reason queues them the same way.
func TestImportQueuesWhatCannotBeTokenised(t *testing.T) {
	for _, fail := range []error{ErrIssuerUnavailable, errors.New("boom")} {
		t.Run(fail.Error(), func(t *testing.T) {
			fed := newFakeFed()
			tok := &flakyTokenizer{fakeTokenizer: &fakeTokenizer{}, ok: 2, err: fail}
			a := newNode(t, Options{Tokenizer: tok, Index: fed.index("a", "Agency a")}, func(c *Config) { c.MaxBatch = 4 }, false)
			a.srv = httptest.NewServer(a.Handler())
			t.Cleanup(a.srv.Close)
			r := a.do(t, "POST", "/v1/records/import", "op-token", goodRows(12)+"bad,1\n")
			var rep ImportReport
			mustJSON(t, r.body, &rep)
			// Two Keys calls (one per purpose) succeed: batches of 4 run
			// one per core, so at most the first batch is published, whole,
			// and the rest is queued.
			if r.status != 202 || rep.Imported != 12 || rep.Published%4 != 0 || rep.Published > 4 || rep.Published+rep.Queued != 12 || rep.Failed != 1 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if a.count(t) != 12 || fed.published() != rep.Published*2 || a.records.OutboxLen() != rep.Queued {
				t.Fatalf("%d records, %d entries, %d queued; want 12, %d, %d", a.count(t), fed.published(), a.records.OutboxLen(), rep.Published*2, rep.Queued)
			}
			tok.mu.Lock()
			tok.ok = 1 << 20
			tok.mu.Unlock()
			a.pub.step(context.Background())
			if fed.published() != 12*2 || a.records.OutboxLen() != 0 {
				t.Fatalf("after the issuer came back: %d entries, %d queued; want 24, 0", fed.published(), a.records.OutboxLen())
			}
		})
	}
}

// The command reports which lines were not imported when a chunk fails.
func TestImportFileSaysWhatWasNotImported(t *testing.T) {
	a := nodeWith(t, Options{}, nil)
	imports := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if imports++; imports > 1 {
			http.Error(w, `{"error":{"code":"internal","message":"the import failed; nothing was imported"}}`, http.StatusInternalServerError)
			return
		}
		a.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	csv := "localId,nhsNumber\n" + goodRows(importChunk+5)
	rep, err := ImportFile(context.Background(), http.DefaultClient, front.URL, "op-token", strings.NewReader(csv), int64(len(csv)), nil)
	want := fmt.Sprintf("rows from line %d on were not imported", importChunk+2)
	if err == nil || !strings.Contains(err.Error(), want) || rep.Imported != importChunk || rep.Published != importChunk || a.count(t) != importChunk {
		t.Fatalf("err %v, report %+v, %d records; want %q", err, rep, a.count(t), want)
	}
}

func TestImportFileMapsLines(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	var b strings.Builder
	b.WriteString("localId,nhsNumber\n")
	nums := syntheticNumbers(importChunk + 10)
	for i, n := range nums {
		if i == importChunk+3 {
			n = "9990000013" // wrong check digit, on line importChunk+5 of the file
		}
		b.WriteString("r" + strconv.Itoa(i) + "," + n + "\n")
	}
	var calls int
	rep, err := ImportFile(context.Background(), http.DefaultClient, a.srv.URL, "op-token", strings.NewReader(b.String()), int64(b.Len()), func(done, total int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != importChunk+9 || rep.Failed != 1 || rep.Errors[0].Line != importChunk+5 || calls < 2 {
		t.Fatalf("report: %+v calls %d", rep, calls)
	}
}

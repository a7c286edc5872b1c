package node

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
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
		err := scanCSV(strings.NewReader(s), func(rec []string, line int, bad *csv.ParseError) error {
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

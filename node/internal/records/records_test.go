package records

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "records.db"), testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testKey is the marker key of the tests' stores.
var testKey = bytes.Repeat([]byte{7}, MarkerKeySize)

var retain = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)

func rec(id, nhs string) Record {
	return Record{LocalID: id, NHSNumber: nhs, Category: "cin", RetainUntil: retain}
}

func TestPutGetDeleteObject(t *testing.T) {
	s := openTest(t)
	res, err := s.Put(rec("a1", "9990000018"), Note{})
	if r := res.Record; err != nil || !res.Created || r.Version != 1 || res.Seq == 0 {
		t.Fatalf("put: %v created=%v version=%d seq=%d", err, res.Created, r.Version, res.Seq)
	}
	if res, err := s.Put(rec("a1", "9990000018"), Note{}); err != nil || res.Created || res.Seq != 0 {
		t.Fatalf("idempotent put: %v created=%v seq=%d", err, res.Created, res.Seq)
	}
	if _, err := s.Put(rec("a1", "9990000026"), Note{}); !errors.Is(err, ErrExists) {
		t.Fatalf("conflicting put: %v", err)
	}
	d, seq, err := s.Delete("a1", Note{})
	if err != nil || d.Version != 2 || seq == 0 {
		t.Fatalf("delete: %v version=%d", err, d.Version)
	}
	if _, err := s.Get("a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	res, err = s.Put(rec("a1", "9990000026"), Note{})
	if err != nil || res.Record.Version != 3 {
		t.Fatalf("re-create keeps version growing: %v version=%d", err, res.Record.Version)
	}
	o, err := s.Object("a1", Note{})
	if err != nil || o.Already || len(o.Seqs) != 1 || !slices.Equal(o.IDs, []string{"a1"}) {
		t.Fatalf("object: %v %+v", err, o)
	}
	if r, _ := s.Get("a1"); !r.Objected || r.Version != 4 {
		t.Fatalf("objected record: %v version %d", r, r.Version)
	}
	if o, _ := s.Object("a1", Note{}); !o.Already || len(o.Seqs) != 0 {
		t.Fatal("second objection not reported as already, or enqueued again")
	}
	if res, err := s.Put(rec("a1", "9990000026"), Note{}); err != nil || res.Created || !res.Record.Objected {
		t.Fatalf("identical put over objected: %v %+v", err, res)
	}
	if _, err := s.Put(rec("a1", "9990000018"), Note{}); !errors.Is(err, ErrExists) {
		t.Fatalf("different put over objected: %v", err)
	}
	if _, err := s.Object("nope", Note{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object missing: %v", err)
	}
}

func TestValidate(t *testing.T) {
	long := make([]byte, MaxLocalIDLen+1)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		r    Record
	}{
		{"empty id", rec("", "9990000018")},
		{"long id", rec(string(long), "9990000018")},
		{"control char", rec("a\nb", "9990000018")},
		{"path traversal", rec("../../../etc/passwd", "9990000018")},
		{"slash", rec("/", "9990000018")},
		{"inner slash", rec("a/b", "9990000018")},
		{"backslash", rec("a\\b", "9990000018")},
		{"dot dot", rec("a..b", "9990000018")},
		{"leading dot", rec(".a", "9990000018")},
		{"right-to-left override", rec("a\u202eb", "9990000018")},
		{"right-to-left mark", rec("a\u200fb", "9990000018")},
		{"markup", rec("<b>", "9990000018")},
		{"fragment mark", rec("a#1", "9990000018")},
		{"space", rec("a b", "9990000018")},
		{"script category", Record{LocalID: "a", NHSNumber: "9990000018", Category: "<script>alert(1)</script>", RetainUntil: time.Now().Add(time.Hour)}},
		{"category upper case", Record{LocalID: "a", NHSNumber: "9990000018", Category: "GP", RetainUntil: time.Now().Add(time.Hour)}},
		{"category double hyphen", Record{LocalID: "a", NHSNumber: "9990000018", Category: "a--b", RetainUntil: time.Now().Add(time.Hour)}},
		{"category bidi", Record{LocalID: "a", NHSNumber: "9990000018", Category: "gp\u202e", RetainUntil: time.Now().Add(time.Hour)}},
		{"short number", rec("a", "999000001")},
		{"non-digit", rec("a", "99900000x8")},
		{"no retention", Record{LocalID: "a", NHSNumber: "9990000018"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestValidLocalIDAndCategory: the documented sets are accepted.
func TestValidLocalIDAndCategory(t *testing.T) {
	for _, id := range []string{"a", "c1", "CASE-2024:0017", "x_y.z:3+1", strings.Repeat("x", MaxLocalIDLen)} {
		if !ValidLocalID(id) {
			t.Errorf("localId %q refused", id)
		}
	}
	for _, c := range []string{"gp", "children-social-care", "school", "a1-b2", strings.Repeat("a", MaxCategoryLen)} {
		if !ValidCategory(c) {
			t.Errorf("category %q refused", c)
		}
	}
	for _, c := range []string{"", "-gp", "gp-", "g p", "gp/", strings.Repeat("a", MaxCategoryLen+1)} {
		if ValidCategory(c) {
			t.Errorf("category %q accepted", c)
		}
	}
}

func TestPutBatchKeepsGoodRows(t *testing.T) {
	s := openTest(t)
	rows := []Record{rec("a", "9990000018"), rec("", "9990000018"), rec("b", "9990000026")}
	res, err := s.PutBatch(rows, Note{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[1].Err == nil || res[2].Err != nil {
		t.Fatalf("results: %+v", res)
	}
	if n, _ := s.Count(); n != 2 {
		t.Fatalf("count %d", n)
	}
}

func TestStringHidesNumber(t *testing.T) {
	r := rec("a", "9990000018")
	for _, s := range []string{r.String(), fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r)} {
		if contains(s, "9990000018") {
			t.Fatalf("number leaked: %s", s)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	s, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(rec("a", "9990000018"), Note{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	s, err = Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Get("a"); err != nil || r.NHSNumber != "9990000018" {
		t.Fatalf("reopen: %v", err)
	}
}

func TestDeleteExpired(t *testing.T) {
	s := openTest(t)
	now := time.Date(2035, 6, 1, 12, 0, 0, 0, time.UTC)
	put := func(id, nhs string, retain time.Time) {
		t.Helper()
		r := rec(id, nhs)
		r.RetainUntil = retain
		if _, err := s.Put(r, Note{}); err != nil {
			t.Fatal(err)
		}
	}
	put("gone1", "9990000018", now.Add(-time.Hour))
	put("gone2", "9990000026", now.Add(-2*time.Hour))
	put("edge", "9990000034", now.Add(999*time.Millisecond)) // the entry's whole second has come
	put("keep1", "9990000042", now.Add(time.Second))
	put("keep2", "9990000050", now.Add(time.Hour))
	if _, err := s.Object("gone2", Note{}); err != nil { // objected: still deleted at retention end
		t.Fatal(err)
	}

	got, next, err := s.DeleteExpired(now, 2, now, Note{})
	if err != nil || len(got) != 2 {
		t.Fatalf("first pass: %v %v", got, err)
	}
	more, next2, err := s.DeleteExpired(now, 2, now, Note{})
	if err != nil || len(more) != 1 {
		t.Fatalf("second pass: %v %v", more, err)
	}
	got = append(got, more...)
	ids := map[string]uint64{}
	for _, e := range got {
		ids[e.Record.LocalID] = e.Record.Version
	}
	if len(ids) != 3 || ids["gone1"] != 2 || ids["gone2"] != 3 || ids["edge"] != 2 {
		t.Fatalf("deleted %v, want gone1 v2, gone2 v3 (objected), edge v2", ids)
	}
	if next.After(now) || !next2.Equal(now.Add(time.Second)) {
		t.Fatalf("next retention end %v, %v; want one already due, then %v", next, next2, now.Add(time.Second))
	}
	for id := range ids {
		if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s still held: %v", id, err)
		}
	}
	if n, _ := s.Count(); n != 2 {
		t.Fatalf("%d records left, want 2", n)
	}
	// The version survives: a re-created record outranks its withdrawal.
	res, err := s.Put(rec("gone1", "9990000018"), Note{})
	if err != nil || res.Record.Version != 3 {
		t.Fatalf("re-created: version %d, %v", res.Record.Version, err)
	}
	txBefore := s.txID(t)
	if got, _, err := s.DeleteExpired(now, 10, now, Note{}); err != nil || len(got) != 0 {
		t.Fatalf("nothing more is due: %v %v", got, err)
	}
	if s.txID(t) != txBefore {
		t.Fatal("a sweep with nothing due wrote a transaction")
	}
}

// txID is the id of the store's last committed write transaction.
func (s *Store) txID(t *testing.T) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

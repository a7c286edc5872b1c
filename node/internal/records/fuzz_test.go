package records

import (
	"html"
	"net/url"
	"path"
	"strings"
	"testing"
)

// safeAnywhere checks, by independent means, that s needs no escaping in a
// URL path, in HTML, or as a file or path segment: what "safe to show
// anywhere" means for a stored localId or category.
func safeAnywhere(t *testing.T, what, s string) {
	t.Helper()
	switch {
	case url.PathEscape(s) != s:
		t.Fatalf("%s %q needs escaping in a URL path", what, s)
	case html.EscapeString(s) != s:
		t.Fatalf("%s %q needs escaping in HTML", what, s)
	case path.Clean("/"+s) != "/"+s || path.Base(s) != s || strings.ContainsAny(s, `\/`):
		t.Fatalf("%s %q is not a single clean path segment", what, s)
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0:
		t.Fatalf("%s %q has a control, space, bidi or other non-printing character", what, s)
	}
}

// FuzzFieldSets: whatever localId or category is accepted is safe anywhere;
// the corpus keeps the probe's strings (traversal, bidi controls, markup).
func FuzzFieldSets(f *testing.F) {
	for _, s := range []string{"c1", "CASE-2024:0017", "../../../etc/passwd", "/", "a\u202eb", "a\u200fb", "<script>alert(1)</script>",
		"children-social-care", "a..b", ".", "a%2fb", "a\x00b", "Ｃ１", "ǅ", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidLocalID(s) {
			safeAnywhere(t, "localId", s)
			if len(s) > MaxLocalIDLen {
				t.Fatalf("localId of %d bytes accepted", len(s))
			}
		}
		if ValidCategory(s) {
			safeAnywhere(t, "category", s)
			if strings.ToLower(s) != s || len(s) > MaxCategoryLen {
				t.Fatalf("category %q accepted", s)
			}
		}
	})
}

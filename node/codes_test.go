package node

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// TestErrorCodesListed: the codes openapi.json lists are exactly httpx's
// — every code the node can send in an error body (httpx.Codes) and in an
// import report's rows (httpx.RowCodes) is listed, and nothing listed is
// unknown.
func TestErrorCodesListed(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var envelope struct {
		Properties struct {
			Code struct{ Enum []string } `json:"code"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["Error"].Properties["error"], &envelope); err != nil {
		t.Fatal(err)
	}
	var rows struct {
		Items struct {
			Properties struct {
				Code struct{ Enum []string } `json:"code"`
			} `json:"properties"`
		} `json:"items"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["ImportReport"].Properties["errors"], &rows); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		where  string
		listed []string
		known  []httpx.Code
	}{
		{"the Error schema", envelope.Properties.Code.Enum, httpx.Codes()},
		{"ImportReport's errors", rows.Items.Properties.Code.Enum, httpx.RowCodes()},
	} {
		var known []string
		for _, k := range c.known {
			known = append(known, string(k))
			if !slices.Contains(c.listed, string(k)) {
				t.Errorf("%s in openapi.json does not list %q", c.where, k)
			}
		}
		for _, l := range c.listed {
			if !slices.Contains(known, l) {
				t.Errorf("%s in openapi.json lists %q, which httpx does not define", c.where, l)
			}
		}
	}
}

// TestNoLiteralErrorCodes: the node writes no error code as a string
// literal — each is an httpx constant, so it is one of httpx.Codes (a
// typed constant would still accept an untyped literal, hence this check
// of the source).
func TestNoLiteralErrorCodes(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(nd ast.Node) bool {
			switch x := nd.(type) {
			case *ast.CallExpr:
				var fn string
				switch f := x.Fun.(type) {
				case *ast.Ident:
					fn = f.Name
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				}
				idx := map[string]int{"errorf": 1, "Errorf": 1, "writeError": 2, "WriteError": 2}
				if i, ok := idx[fn]; ok && len(x.Args) > i {
					if _, lit := x.Args[i].(*ast.BasicLit); lit {
						t.Errorf("%s: %s with a literal code", fset.Position(x.Pos()), fn)
					}
				}
			case *ast.KeyValueExpr:
				if k, ok := x.Key.(*ast.Ident); ok && k.Name == "Code" {
					if _, lit := x.Value.(*ast.BasicLit); lit {
						t.Errorf("%s: Code: with a literal", fset.Position(x.Pos()))
					}
				}
			}
			return true
		})
	}
}

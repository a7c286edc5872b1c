package sim

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestSVGIsWellFormedAndEscaped(t *testing.T) {
	s := small(t, "partition-heal", 20)
	s.Name = `a<b & "c"`
	r, _ := runNoWall(t, s)
	var a, b bytes.Buffer
	if err := r.WriteSVG(&a); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings differ")
	}
	// Parse it: every element closed, the name escaped.
	dec := xml.NewDecoder(bytes.NewReader(a.Bytes()))
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if c, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(c))
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{`a<b & "c"`, "partition 0: 33% cut off", "p99", "anti-entropy"} {
		if !strings.Contains(all, want) {
			t.Errorf("picture lacks %q", want)
		}
	}
}

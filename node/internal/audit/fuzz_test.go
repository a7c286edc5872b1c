package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addGoldenLines(f *testing.F) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "signed.log"))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzDecodeLine: the line decoder never panics, and whatever it accepts is
// exactly the canonical encoding of what it decoded.
func FuzzDecodeLine(f *testing.F) {
	for _, l := range lines(addGoldenLines(f)) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add([]byte(`{"i":0,"event":{},"root":"00"}`))
	f.Add([]byte(`{"i":18446744073709551615,"event":null,"root":null}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		index, event, head, err := decodeLine(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if got := encodeLine(nil, index, event, head); !bytes.Equal(got, append(append([]byte(nil), line...), '\n')) {
			t.Fatalf("accepted a non-canonical line:\n%q\nre-encodes as\n%q", line, got)
		}
	})
}

// FuzzVerify: verification of arbitrary bytes never panics, and a log it
// accepts has as many lines as its head's size.
func FuzzVerify(f *testing.F) {
	golden := addGoldenLines(f)
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, log []byte) {
		head, err := Verify(bytes.NewReader(log))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line == 0 {
				t.Fatalf("error %v does not name a line", err)
			}
			return
		}
		if n := uint64(bytes.Count(log, []byte("\n"))); n != head.Size {
			t.Fatalf("verified %d lines as a head of size %d", n, head.Size)
		}
	})
}

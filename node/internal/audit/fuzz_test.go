package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
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

// FuzzDecodeHeadOffer: the witness's decoder of what peers send never
// panics, and what it accepts respects its bounds and re-encodes to an
// offer it accepts again with the same meaning.
func FuzzDecodeHeadOffer(f *testing.F) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	root := emptyRoot.String()
	f.Add([]byte(`{"size":6,"root":"` + root + `","sig":"` + sig + `","from":3,"proof":["` + root + `"]}`))
	f.Add([]byte(`{"size":6,"size":7,"root":"` + root + `","sig":"` + sig + `"}`))
	f.Add([]byte(`{"size":1,"root":"` + root + `","sig":"` + sig + `","proof":[]}`))
	f.Add([]byte(`{"size":18446744073709551615,"root":"` + root + `","sig":"` + sig + `","from":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeHeadOffer(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if o.Size == 0 || o.From > o.Size || len(o.Proof) > maxProof || len(o.Sig) != ed25519.SignatureSize {
			t.Fatalf("accepted an offer out of bounds: %+v", o)
		}
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		o2, err := DecodeHeadOffer(again)
		if err != nil || o2.Size != o.Size || o2.Root != o.Root || o2.From != o.From || len(o2.Proof) != len(o.Proof) {
			t.Fatalf("re-encoded offer %s decodes as %+v, %v", again, o2, err)
		}
	})
}

// FuzzDecodeHead: the head file's decoder never panics and accepts only
// heads of size at least 1 with a signature of the right size or none.
func FuzzDecodeHead(f *testing.F) {
	f.Add([]byte(`{"size":6,"root":"` + emptyRoot.String() + `","sig":"` + base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"}`))
	f.Add([]byte(`{"size":6,"root":"` + emptyRoot.String() + `"}`))
	f.Add([]byte(`{"size":6,"root":"` + emptyRoot.String() + `","root":"` + emptyRoot.String() + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHead(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if h.Size == 0 || len(h.Sig) != 0 && len(h.Sig) != ed25519.SignatureSize {
			t.Fatalf("accepted %+v", h)
		}
	})
}

package locator

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeEntry: DecodeEntry never panics, and whatever it accepts
// re-encodes to the same bytes (the encoding is canonical) and goes through
// Apply without panicking.
func FuzzDecodeEntry(f *testing.F) {
	h := testHolder(f, 1, nil)
	good := mustPublish(f, h, 1, 1, t0.Add(time.Hour))
	f.Add(good.Encode())
	f.Add(mustWithdraw(f, h, 1, 2, t0.Add(time.Hour)).Encode())
	f.Add(good.Encode()[:headerSize])
	f.Add([]byte{FormatV1})
	s, err := NewMemStore(Policy{DigestDepth: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			if e != nil {
				t.Fatal("entry with error")
			}
			return
		}
		if !bytes.Equal(e.Encode(), b) || e.Size() != len(b) {
			t.Fatal("accepted encoding is not canonical")
		}
		o, err := s.Apply(t0, e)
		if (o.Result == Rejected) != (err != nil) {
			t.Fatalf("outcome %v with error %v", o.Result, err)
		}
		_, _ = e.Open(SealKey{}, keyring{})
	})
}

// FuzzParsePayload: the sealed payload parser (reached only after the AEAD
// opened, so with authenticated bytes — but still bounded) never panics and
// round-trips what it accepts.
func FuzzParsePayload(f *testing.F) {
	p := append([]byte{payloadV1}, appendIdentity(nil, "node-a", "school", 1767225600)...)
	f.Add(append(p, make([]byte, 64)...))
	f.Add([]byte{payloadV1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, cat, reg, sig, err := parsePayload(b)
		if err != nil {
			return
		}
		back := append([]byte{payloadV1}, appendIdentity(nil, id, cat, reg)...)
		if !bytes.Equal(append(back, sig...), b) {
			t.Fatal("payload does not round-trip")
		}
	})
}

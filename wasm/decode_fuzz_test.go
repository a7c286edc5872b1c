package wasm

import (
	"errors"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
)

// FuzzHostDecoders feeds arbitrary module responses to every host-side
// decoder: each must return ErrABI or a well-formed value, never panic. A
// module is trusted code, but a decoder that trusts lengths is one upgrade
// away from an out-of-range read.
func FuzzHostDecoders(f *testing.F) {
	f.Add(uint8(1), abi.AppendList(nil, []byte("sys"), []byte("1"), []byte("9990000018"), []byte("999 000 0018"), nil, nil, []byte("test")))
	f.Add(uint8(2), abi.AppendList(nil, make([]byte, 32), make([]byte, 32)))
	f.Add(uint8(1), abi.AppendList(nil, make([]byte, 64), make([]byte, 16), make([]byte, 32)))
	f.Add(uint8(3), []byte{0xff, 0x01})
	f.Add(uint8(1), abi.AppendList(nil, []byte("sys"), []byte("\x01\x00\x0a9990000018\x0c999 000 0018\x04test\x00")))
	f.Add(uint8(1), abi.AppendList(nil, []byte{0}, []byte("node-a"), []byte("school"), make([]byte, 8), []byte("1")))
	f.Add(uint8(2), abi.AppendList(nil, []byte{2}, nil, nil, nil, nil, []byte{9}, nil, nil, nil, nil))
	f.Fuzz(func(t *testing.T, n uint8, view []byte) {
		k := int(n % 8)
		str := func(b []byte) string { return string(b) }
		inputs := make([]string, k)
		out := make([]Result, k)
		if err := decodeValidate(str, view, "nhs", inputs, out); err != nil && !errors.Is(err, ErrABI) {
			t.Fatalf("validate: %v", err)
		}
		if err := decodeValidateCompact(str, view, "nhs", inputs, out); err != nil && !errors.Is(err, ErrABI) {
			t.Fatalf("validate compact: %v", err)
		}
		var b Blinding
		if err := decodeBlind(view, k, &b); err == nil && (len(b.Blinds) != k || len(b.Blinded) != k) {
			t.Fatal("blind: wrong count")
		}
		toks := make([]Token, k)
		if err := decodeFinalize(view, toks); err == nil {
			for _, tk := range toks {
				if len(tk.Token) != 64 {
					t.Fatal("finalize: short token accepted")
				}
			}
		}
		if l, s, err := decodeDeriveKeys(view, k); err == nil && (len(l) != k || len(s) != k) {
			t.Fatal("derive: wrong count")
		}
		_, _ = decodeSchemes(view)
		opened := make([]Opened, k)
		if err := decodeOpenEntries(view, opened); err != nil && !errors.Is(err, ErrABI) {
			t.Fatalf("open entries: %v", err)
		}
		_ = statusError(n, string(view))
	})
}

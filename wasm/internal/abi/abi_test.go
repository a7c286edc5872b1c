package abi

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func TestListRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		items [][]byte
	}{
		{"empty", nil},
		{"one empty item", [][]byte{{}}},
		{"several", [][]byte{[]byte("nhs"), []byte("999 000 0018"), make([]byte, 300)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := AppendList(nil, tt.items...)
			got, err := DecodeList(msg)
			if err != nil || len(got) != len(tt.items) {
				t.Fatalf("DecodeList: %v, %d items", err, len(got))
			}
			it := NewIter(msg)
			for i := range tt.items {
				if !bytes.Equal(got[i], tt.items[i]) || !bytes.Equal(it.Next(), tt.items[i]) {
					t.Fatalf("item %d differs", i)
				}
			}
			if it.Err() != nil {
				t.Fatal(it.Err())
			}
		})
	}
}

func TestDecodeListRejects(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"count beyond message", []byte{5}},
		{"length beyond message", []byte{1, 9, 'a'}},
		{"trailing bytes", []byte{1, 1, 'a', 'b'}},
		{"overlong varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeList(tt.msg); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeList: %v", err)
			}
			it := NewIter(tt.msg)
			for it.Len() > 0 && it.Next() != nil {
			}
			if it.Err() == nil {
				t.Fatal("Iter accepted it")
			}
		})
	}
}

// panicReader makes token.Blind panic inside the handler.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("boom") }

func TestHandlerRecoversPanics(t *testing.T) {
	h := Handler{Rand: panicReader{}}
	resp := h.Handle(OpBlind, AppendList(nil, []byte("nhs"), []byte("9990000018")))
	if resp[0] != StatusInternal {
		t.Fatalf("status %d, want internal", resp[0])
	}
	h.Rand = rand.Reader
	if resp := h.Handle(OpBlind, AppendList(nil, []byte("nhs"), []byte("9990000018"))); resp[0] != StatusOK {
		t.Fatalf("after a recovered panic: status %d", resp[0])
	}
}

func TestHandlerStatuses(t *testing.T) {
	h := Handler{Rand: rand.Reader}
	tests := []struct {
		name string
		op   int32
		req  []byte
		want byte
	}{
		{"unknown op", 42, AppendList(nil), StatusUnknownOp},
		{"malformed", OpValidate, []byte{9}, StatusMalformed},
		{"validate no scheme", OpValidate, AppendList(nil), StatusMalformed},
		{"unknown scheme", OpValidate, AppendList(nil, []byte("x")), StatusUnknownScheme},
		{"blind none", OpBlind, AppendList(nil, []byte("nhs")), StatusBatchSize},
		{"blind invalid", OpBlind, AppendList(nil, []byte("nhs"), []byte("1")), StatusInvalidNumber},
		{"finalize bad purpose", OpFinalize, AppendList(nil, []byte("nhs"), []byte("A"), []byte("1"), nil, nil, []byte("9990000018"), nil, nil), StatusInvalidPurpose},
		{"finalize bad epoch", OpFinalize, AppendList(nil, []byte("nhs"), []byte("a"), []byte("4294967296"), nil, nil, []byte("9990000018"), nil, nil), StatusInvalidEpoch},
		{"finalize bad key", OpFinalize, AppendList(nil, []byte("nhs"), []byte("a"), []byte("1"), nil, nil, []byte("9990000018"), nil, nil), StatusPublicKey},
		{"schemes with args", OpSchemes, AppendList(nil, nil), StatusMalformed},
		{"schemes", OpSchemes, AppendList(nil), StatusOK},
		{"derive", OpDeriveKeys, AppendList(nil, []byte("t")), StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.Handle(tt.op, tt.req)
			if resp[0] != tt.want {
				t.Fatalf("status %d (%s), want %d", resp[0], resp[1:], tt.want)
			}
			if resp[0] == StatusOK {
				if _, err := DecodeList(resp[1:]); err != nil {
					t.Fatalf("response does not decode: %v", err)
				}
			} else if bytes.Contains(resp, []byte("9990000018")) {
				t.Fatal("error message contains the number")
			}
		})
	}
}

func FuzzDecodeList(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendList(nil, []byte("nhs"), []byte("9990000018")))
	f.Add([]byte{1, 9, 'a'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, msg []byte) {
		items, err := DecodeList(msg)
		it := NewIter(msg)
		var iterItems [][]byte
		for it.Len() > 0 {
			x := it.Next()
			if x == nil && it.Err() != nil {
				break
			}
			iterItems = append(iterItems, x)
		}
		if (err == nil) != (it.Err() == nil) {
			t.Fatalf("DecodeList err %v, Iter err %v", err, it.Err())
		}
		if err != nil {
			return
		}
		if !bytes.Equal(AppendList(nil, items...), msg) {
			// Non-minimal varints decode but re-encode differently; the
			// items must still agree with the iterator.
			for i := range items {
				if !bytes.Equal(items[i], iterItems[i]) {
					t.Fatal("DecodeList and Iter disagree")
				}
			}
		}
	})
}

// FuzzHandle throws arbitrary requests at every operation: the handler must
// answer with a status byte and, on success, a decodable list; never panic
// (a recovered panic shows as StatusInternal, which is a failure here).
func FuzzHandle(f *testing.F) {
	f.Add(int32(OpValidate), AppendList(nil, []byte("nhs"), []byte("999 000 0018"), []byte("x")))
	f.Add(int32(OpValidateCompact), AppendList(nil, []byte("nhs"), []byte("999 000 0018"), []byte("x"), []byte("9990000019")))
	f.Add(int32(OpBlind), AppendList(nil, []byte("chi"), []byte("1506940013")))
	f.Add(int32(OpFinalize), AppendList(nil, []byte("nhs"), []byte("safeguarding"), []byte("7"), make([]byte, 32), make([]byte, 64), []byte("9990000018"), make([]byte, 32), make([]byte, 32)))
	f.Add(int32(OpDeriveKeys), AppendList(nil, []byte("tok")))
	f.Add(int32(OpBlindVerifiable), AppendList(nil, []byte("nhs"), []byte("9990000018")))
	cf := newCombineFixture(f)
	f.Add(int32(OpCombine), cf.request(cf.keySet, cf.partials))
	f.Add(int32(OpSchemes), AppendList(nil))
	f.Add(int32(-1), []byte{0})
	open := newOpenFixture(f, false)
	f.Add(int32(OpOpenEntries), AppendList(nil, open.key[:], open.members, open.entry, open.entry[:90]))
	f.Add(int32(OpOpenEntries), AppendList(nil, make([]byte, 32), AppendList(nil, []byte("n"), make([]byte, 32)), []byte{1}))
	h := Handler{Rand: zeroFreeReader{}}
	f.Fuzz(func(t *testing.T, op int32, req []byte) {
		resp := h.Handle(op, req)
		if len(resp) == 0 {
			t.Fatal("empty response")
		}
		if resp[0] == StatusInternal {
			t.Fatalf("handler panicked or failed internally: %s", resp[1:])
		}
		if resp[0] == StatusOK {
			if _, err := DecodeList(resp[1:]); err != nil {
				t.Fatalf("OK response does not decode: %v", err)
			}
		}
	})
}

// zeroFreeReader is a deterministic, never-zero byte source for fuzzing.
type zeroFreeReader struct{}

func (zeroFreeReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i%251) + 1
	}
	return len(p), nil
}

var _ io.Reader = zeroFreeReader{}

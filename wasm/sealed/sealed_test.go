package sealed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"
)

// fixedReader is a deterministic nonce source for tests.
type fixedReader byte

func (f fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f) + byte(i)
	}
	return len(p), nil
}

type fixture struct {
	key      [32]byte
	lookup   [16]byte
	entryPub [32]byte
	nodeKey  ed25519.PrivateKey
	keys     NodeKeys
	id       Identity
}

func newFixture() fixture {
	f := fixture{id: Identity{NodeID: "node-a", Category: "school", RegisteredAt: 1767225600}}
	f.key[0], f.lookup[0], f.entryPub[0] = 1, 2, 3
	f.nodeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := f.nodeKey.Public().(ed25519.PublicKey)
	f.keys = func(id string) (ed25519.PublicKey, bool) { return pub, id == "node-a" }
	return f
}

func (f fixture) seal(t testing.TB) []byte {
	t.Helper()
	s, err := Seal(fixedReader(9), f.key, f.lookup, f.entryPub, f.nodeKey, f.id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entry builds a canonical entry encoding around a sealed part (the outer
// signature is left zero: OpenEntry does not check it).
func entry(lookup [16]byte, pub [32]byte, deleted bool, s []byte) []byte {
	b := []byte{entryFormatV1}
	b = append(b, lookup[:]...)
	b = append(b, pub[:]...)
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.BigEndian.AppendUint64(b, 2)
	if deleted {
		b = append(b, entryFlagDeleted)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, 64)...)
}

func TestSealOpenRoundTrip(t *testing.T) {
	f := newFixture()
	s := f.seal(t)
	id, _, err := OpenVerify(f.key, f.lookup, f.entryPub, s, f.keys)
	if err != nil || id != f.id {
		t.Fatalf("OpenVerify: %+v, %v", id, err)
	}
	o, err := OpenEntry(f.key, entry(f.lookup, f.entryPub, true, s), f.keys)
	if err != nil || o.Identity != f.id || !o.Withdrawn {
		t.Fatalf("OpenEntry: %+v, %v", o, err)
	}
}

func TestOpenFailures(t *testing.T) {
	f := newFixture()
	s := f.seal(t)
	other := newFixture()
	other.nodeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	forged := other.seal(t) // claims node-a, signed by another key
	tampered := bytes.Clone(s)
	tampered[30] ^= 1
	wrongKey := f.key
	wrongKey[1] = 1
	movedPub := f.entryPub
	movedPub[1] = 1
	none := func(string) (ed25519.PublicKey, bool) { return nil, false }
	short := func(string) (ed25519.PublicKey, bool) { return make([]byte, 5), true }
	tests := []struct {
		name string
		key  [32]byte
		pub  [32]byte
		s    []byte
		keys NodeKeys
		want error
	}{
		{"wrong seal key", wrongKey, f.entryPub, s, f.keys, ErrSealBroken},
		{"tampered", f.key, f.entryPub, tampered, f.keys, ErrSealBroken},
		{"moved to another entry key", f.key, movedPub, s, f.keys, ErrSealBroken},
		{"truncated", f.key, f.entryPub, s[:10], f.keys, ErrSealBroken},
		{"unknown holder", f.key, f.entryPub, s, none, ErrUnknownHolder},
		{"forged holder signature", f.key, f.entryPub, forged, f.keys, ErrHolderSignature},
		{"malformed member key", f.key, f.entryPub, s, short, ErrHolderSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := OpenVerify(tt.key, f.lookup, tt.pub, tt.s, tt.keys)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			_, err = OpenEntry(tt.key, entry(f.lookup, tt.pub, false, tt.s), tt.keys)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenEntry: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSealRejects(t *testing.T) {
	f := newFixture()
	tests := []struct {
		name string
		id   Identity
		key  ed25519.PrivateKey
	}{
		{"empty node id", Identity{}, f.nodeKey},
		{"long node id", Identity{NodeID: string(make([]byte, MaxNodeIDLen+1))}, f.nodeKey},
		{"long category", Identity{NodeID: "n", Category: string(make([]byte, MaxCategoryLen+1))}, f.nodeKey},
		{"short node key", f.id, f.nodeKey[:10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Seal(fixedReader(1), f.key, f.lookup, f.entryPub, tt.key, tt.id); err == nil {
				t.Fatal("sealed")
			}
		})
	}
}

func TestReadEntryRejects(t *testing.T) {
	f := newFixture()
	good := entry(f.lookup, f.entryPub, false, f.seal(t))
	badFlags := bytes.Clone(good)
	badFlags[1+16+32+16] = 2
	badFormat := bytes.Clone(good)
	badFormat[0] = 2
	tests := map[string][]byte{
		"empty":       nil,
		"truncated":   good[:len(good)-1],
		"trailing":    append(bytes.Clone(good), 0),
		"flags":       badFlags,
		"format":      badFormat,
		"too large":   make([]byte, MaxEntrySize+1),
		"header only": good[:entryHeaderSize],
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadEntry(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	f := newFixture()
	s := f.seal(t)
	_, _, err := OpenVerify([32]byte{}, f.lookup, f.entryPub, s, f.keys)
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("node-a")) {
		t.Fatalf("error %v", err)
	}
}

// FuzzParsePayload: the payload parser is bounded and round-trips what it
// accepts (one encoding per payload).
func FuzzParsePayload(f *testing.F) {
	id := Identity{NodeID: "node-a", Category: "school", RegisteredAt: 1767225600}
	f.Add(append(append([]byte{PayloadV1}, AppendIdentity(nil, id)...), make([]byte, 64)...))
	f.Add([]byte{PayloadV1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, sig, err := ParsePayload(b)
		if err != nil {
			return
		}
		back := append(append([]byte{PayloadV1}, AppendIdentity(nil, id)...), sig...)
		if !bytes.Equal(back, b) {
			t.Fatal("payload does not round-trip")
		}
	})
}

// FuzzOpenEntry: arbitrary entry bytes never panic, and every failure is an
// *Error with a known reason.
func FuzzOpenEntry(f *testing.F) {
	fx := newFixture()
	s := fx.seal(f)
	f.Add(entry(fx.lookup, fx.entryPub, false, s))
	f.Add(entry(fx.lookup, fx.entryPub, true, s[:30]))
	f.Add([]byte{entryFormatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := OpenEntry(fx.key, b, fx.keys)
		if err == nil {
			if o.NodeID != "node-a" {
				t.Fatalf("opened as %q", o.NodeID)
			}
			return
		}
		var se *Error
		if !errors.As(err, &se) || se.Reason.Err() == nil {
			t.Fatalf("error %v has no reason", err)
		}
	})
}

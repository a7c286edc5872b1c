package federation

import (
	"bytes"
	"testing"
)

func FuzzDecodeSignedDescriptor(f *testing.F) {
	a := mustAuthority(f)
	d, _ := testDescriptor(f, "node-1")
	sd, err := a.Enrol(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sd.Encode())
	f.Add([]byte("SPD1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := DecodeSignedDescriptor(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sd.Encode(), b) {
			t.Fatalf("decode/encode not canonical")
		}
		_ = sd.Verify(a.PublicKey(), testNow, nil)
	})
}

func FuzzDecodeRevocationList(f *testing.F) {
	a := mustAuthority(f)
	rl, err := a.SignRevocations(3, testNow, []Revocation{{NodeID: "node-1"}, {NodeID: "node-2", Serial: 4}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rl.Encode())
	f.Add([]byte("SPR1\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rl, err := DecodeRevocationList(b)
		if err != nil {
			return
		}
		if !bytes.Equal(rl.Encode(), b) {
			t.Fatalf("decode/encode not canonical")
		}
		_ = rl.Verify(a.PublicKey())
	})
}

func FuzzDecodePEMBlocks(f *testing.F) {
	f.Add([]byte("-----BEGIN SIGNPOST GOSSIP KEY-----\nAAAA\n-----END SIGNPOST GOSSIP KEY-----\n"))
	f.Add([]byte("junk"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodePEMBlocks(b)
	})
}

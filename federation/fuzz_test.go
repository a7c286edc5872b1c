package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
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

func FuzzDecodeNodeMeta(f *testing.F) {
	a := mustAuthority(f)
	d, _ := testDescriptor(f, "node-1")
	sd, err := a.Enrol(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add((&nodeMeta{descriptor: sd.Encode(), peerAddr: ":7947"}).encode())
	f.Add((&nodeMeta{descriptor: sd.Encode(), peerAddr: "127.0.0.1:8443"}).encode())
	f.Add([]byte("SPM1\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, addr, err := decodeNodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrNotEnrolled) && !errors.Is(err, ErrDescriptorForged) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if got := (&nodeMeta{descriptor: sd.Encode(), peerAddr: addr}).encode(); !bytes.Equal(got, b) {
			t.Fatalf("decode/encode not canonical")
		}
		_ = sd.Verify(a.PublicKey(), testNow, nil)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, []byte("one")), []byte("two")), 16)
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1024)
	f.Add([]byte{0x00}, 1024)
	f.Fuzz(func(t *testing.T, b []byte, maxMsg int) {
		msgs, err := decodeBatch(b, maxMsg)
		if err != nil {
			return
		}
		var re []byte
		for _, m := range msgs {
			if len(m) == 0 || len(m) > maxMsg {
				t.Fatalf("message of %d bytes passed (limit %d)", len(m), maxMsg)
			}
			re = appendFrame(re, m)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-framing differs")
		}
	})
}

func FuzzDescriptorFromCert(f *testing.F) {
	a := mustAuthority(f)
	d, priv := testDescriptor(f, "node-1")
	sd, err := a.Enrol(d)
	if err != nil {
		f.Fatal(err)
	}
	cert, err := selfCertificate(&Credentials{Descriptor: sd, PrivateKey: priv})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert.Certificate[0])
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		sd, err := descriptorFromCert(c)
		if err != nil {
			if !errors.Is(err, ErrNotEnrolled) && !errors.Is(err, ErrDescriptorForged) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if pub, ok := c.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(sd.Descriptor.PublicKey) {
			t.Fatal("certificate key is not the descriptor's")
		}
	})
}

package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testDescriptor(t testing.TB, id string) (Descriptor, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Descriptor{
		NodeID: id, Agency: "Borsetshire Children's Services", Category: "social-care",
		Purposes:  []string{"safeguarding", "direct-care"},
		PublicKey: pub, GossipAddr: "127.0.0.1:7946", PeerAddr: "127.0.0.1:8443",
		NotBefore: testNow.Add(-time.Hour), Expires: testNow.Add(720 * time.Hour), Serial: 1,
	}, priv
}

func mustAuthority(t testing.TB) *Authority {
	t.Helper()
	a, err := GenerateAuthority()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDescriptorRoundTripAndSize(t *testing.T) {
	a := mustAuthority(t)
	d, _ := testDescriptor(t, "node-1")
	// The largest descriptor the validators allow must still fit.
	d.Agency = string(bytes.Repeat([]byte("a"), 60))
	sd, err := a.Enrol(d)
	if err != nil {
		t.Fatal(err)
	}
	enc := sd.Encode()
	if len(enc) > MaxSignedDescriptorSize {
		t.Fatalf("encoded %d bytes > %d", len(enc), MaxSignedDescriptorSize)
	}
	got, err := DecodeSignedDescriptor(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), enc) {
		t.Fatal("re-encoding differs")
	}
	if got.Descriptor.Purposes[0] != "direct-care" {
		t.Fatalf("purposes not sorted: %v", got.Descriptor.Purposes)
	}
	if err := got.Verify(a.PublicKey(), testNow, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("typical signed descriptor: %d bytes", len(enc))
}

func TestDescriptorVerifyRejections(t *testing.T) {
	a := mustAuthority(t)
	other := mustAuthority(t)
	d, _ := testDescriptor(t, "node-1")
	sd, err := a.Enrol(d)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Enrol(d)
	if err != nil {
		t.Fatal(err)
	}
	tampered, _ := DecodeSignedDescriptor(sd.Encode())
	tampered.Descriptor.Purposes = []string{"direct-care", "policing"}
	revokeAll, _ := a.SignRevocations(2, testNow, []Revocation{{NodeID: "node-1"}})
	revokeSerial, _ := a.SignRevocations(3, testNow, []Revocation{{NodeID: "node-1", Serial: 1}})
	revokeOther, _ := a.SignRevocations(4, testNow, []Revocation{{NodeID: "node-1", Serial: 2}, {NodeID: "node-2"}})
	tests := []struct {
		name string
		sd   *SignedDescriptor
		now  time.Time
		rl   *RevocationList
		want error
	}{
		{"valid", sd, testNow, nil, nil},
		{"nil", nil, testNow, nil, ErrNotEnrolled},
		{"other authority", foreign, testNow, nil, ErrDescriptorForged},
		{"tampered purposes", tampered, testNow, nil, ErrDescriptorForged},
		{"expired", sd, testNow.Add(721 * time.Hour), nil, ErrDescriptorExpired},
		{"at expiry", sd, d.Expires, nil, ErrDescriptorExpired},
		{"not yet valid", sd, testNow.Add(-2 * time.Hour), nil, ErrDescriptorExpired},
		{"revoked all serials", sd, testNow, revokeAll, ErrDescriptorRevoked},
		{"revoked this serial", sd, testNow, revokeSerial, ErrDescriptorRevoked},
		{"other serial revoked", sd, testNow, revokeOther, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sd.Verify(a.PublicKey(), tt.now, tt.rl)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEnrolRefusesInvalid(t *testing.T) {
	a := mustAuthority(t)
	tests := []struct {
		name string
		mod  func(*Descriptor)
	}{
		{"empty id", func(d *Descriptor) { d.NodeID = "" }},
		{"upper-case id", func(d *Descriptor) { d.NodeID = "Node1" }},
		{"id with dot", func(d *Descriptor) { d.NodeID = "node.1" }},
		{"long agency", func(d *Descriptor) { d.Agency = string(bytes.Repeat([]byte("x"), 101)) }},
		{"too many purposes", func(d *Descriptor) {
			d.Purposes = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
		}},
		{"short key", func(d *Descriptor) { d.PublicKey = d.PublicKey[:31] }},
		{"expires before not-before", func(d *Descriptor) { d.Expires = d.NotBefore }},
		{"zero serial", func(d *Descriptor) { d.Serial = 0 }},
		{"too big for metadata", func(d *Descriptor) {
			d.Agency = string(bytes.Repeat([]byte("x"), 100))
			d.GossipAddr = string(bytes.Repeat([]byte("g"), 64))
			d.PeerAddr = string(bytes.Repeat([]byte("p"), 64))
			d.Purposes = []string{"aaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaab", "aaaaaaaaaaaaaaaaaaaac"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := testDescriptor(t, "node-1")
			tt.mod(&d)
			if _, err := a.Enrol(d); err == nil {
				t.Fatal("Enrol accepted an invalid descriptor")
			}
		})
	}
}

func TestRevocationListRoundTrip(t *testing.T) {
	a := mustAuthority(t)
	rl, err := a.SignRevocations(7, testNow, []Revocation{{NodeID: "b", Serial: 3}, {NodeID: "a"}, {NodeID: "b", Serial: 3}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRevocationList(rl.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(a.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 2 || !got.Revoked("a", 99) || !got.Revoked("b", 3) || got.Revoked("b", 4) || got.Revoked("c", 1) {
		t.Fatalf("unexpected list %+v", got.Entries)
	}
	if err := got.Verify(mustAuthority(t).PublicKey()); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("foreign authority: %v", err)
	}
	got.Version++
	if err := got.Verify(a.PublicKey()); err == nil {
		t.Fatal("tampered version verified")
	}
}

package sealed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// shieldFixture is a holder shielded by broker "csc-hub".
type shieldFixture struct {
	fixture
	brokerKey ed25519.PrivateKey
	brokerPub ed25519.PublicKey
	members   NodeKeys // holder and broker
}

func newShieldFixture() shieldFixture {
	f := shieldFixture{fixture: newFixture()}
	f.id = Identity{NodeID: "clinic-sh", Category: "sexual-health", RegisteredAt: 1767225600}
	f.brokerKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{11}, 32))
	f.brokerPub = f.brokerKey.Public().(ed25519.PublicKey)
	holderPub := f.nodeKey.Public().(ed25519.PublicKey)
	f.members = func(id string) (ed25519.PublicKey, bool) {
		switch id {
		case "clinic-sh":
			return holderPub, true
		case "csc-hub":
			return f.brokerPub, true
		}
		return nil, false
	}
	return f
}

func (f shieldFixture) sealShielded(t testing.TB, id Identity) []byte {
	t.Helper()
	s, err := SealShielded(fixedReader(5), f.key, f.lookup, f.entryPub, f.nodeKey, id, "csc-hub", f.brokerPub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBrokerKeyIsTheNodeKey: the X25519 key a holder seals to, computed from
// the broker's enrolled Ed25519 public key, is the public half of the key
// the broker derives from its own private node key.
func TestBrokerKeyIsTheNodeKey(t *testing.T) {
	for seed := byte(1); seed < 20; seed++ {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
		pub, err := BrokerPublicKey(k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := BrokerPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(priv.PublicKey()) {
			t.Fatalf("seed %d: converted public key %x, derived %x", seed, pub.Bytes(), priv.PublicKey().Bytes())
		}
	}
	for name, bad := range map[string][]byte{
		"short":     make([]byte, 31),
		"identity":  append([]byte{1}, make([]byte, 31)...),
		"non-canon": bytes.Repeat([]byte{0xff}, 32),
	} {
		if _, err := BrokerPublicKey(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestShieldedRoundTrip(t *testing.T) {
	f := newShieldFixture()
	for _, id := range []Identity{f.id, {NodeID: "clinic-sh", RegisteredAt: 0}} {
		s := f.sealShielded(t, id)
		got, sh, err := OpenVerify(f.key, f.lookup, f.entryPub, s, f.members)
		if err != nil || got != (Identity{RegisteredAt: id.RegisteredAt}) || sh.Broker != "csc-hub" || !sh.Shielded() {
			t.Fatalf("reader: %+v %q %v", got, sh.Broker, err)
		}
		o, err := OpenEntry(f.key, entry(f.lookup, f.entryPub, id.Category == "", s), f.members)
		if err != nil || o.Shield.Broker != "csc-hub" || o.NodeID != "" || o.Withdrawn != (id.Category == "") {
			t.Fatalf("OpenEntry: %+v %v", o, err)
		}
		holder, err := OpenShield(f.brokerKey, "csc-hub", f.lookup, f.entryPub, sh.Inner, f.members)
		if err != nil || holder != id {
			t.Fatalf("broker: %+v %v", holder, err)
		}
	}
}

func TestShieldedFailures(t *testing.T) {
	f := newShieldFixture()
	s := f.sealShielded(t, f.id)
	_, sh, err := OpenVerify(f.key, f.lookup, f.entryPub, s, f.members)
	if err != nil {
		t.Fatal(err)
	}
	otherBroker := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{12}, 32))
	tampered := bytes.Clone(sh.Inner)
	tampered[40] ^= 1
	moved := f.entryPub
	moved[5] ^= 1
	forger := f
	forger.nodeKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{13}, 32))
	forged := forger.sealShielded(t, f.id) // claims clinic-sh, signed by another key
	_, forgedSh, err := OpenVerify(f.key, f.lookup, f.entryPub, forged, f.members)
	if err != nil {
		t.Fatal(err)
	}
	onlyBroker := func(id string) (ed25519.PublicKey, bool) {
		return f.brokerPub, id == "csc-hub"
	}
	tests := []struct {
		name   string
		key    ed25519.PrivateKey
		broker string
		pub    [32]byte
		inner  []byte
		keys   NodeKeys
		want   error
	}{
		{"another node's key", otherBroker, "csc-hub", f.entryPub, sh.Inner, f.members, ErrNotBroker},
		{"the holder's own key", f.nodeKey, "csc-hub", f.entryPub, sh.Inner, f.members, ErrNotBroker},
		{"another broker named", f.brokerKey, "csc-other", f.entryPub, sh.Inner, f.members, ErrNotBroker},
		{"moved to another entry", f.brokerKey, "csc-hub", moved, sh.Inner, f.members, ErrNotBroker},
		{"tampered", f.brokerKey, "csc-hub", f.entryPub, tampered, f.members, ErrNotBroker},
		{"truncated", f.brokerKey, "csc-hub", f.entryPub, sh.Inner[:20], f.members, ErrNotBroker},
		{"holder not a member", f.brokerKey, "csc-hub", f.entryPub, sh.Inner, onlyBroker, ErrUnknownHolder},
		{"forged holder signature", f.brokerKey, "csc-hub", f.entryPub, forgedSh.Inner, f.members, ErrHolderSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := OpenShield(tt.key, tt.broker, f.lookup, tt.pub, tt.inner, tt.keys)
			if !errors.Is(err, tt.want) || id != (Identity{}) {
				t.Fatalf("got %+v, %v, want %v", id, err, tt.want)
			}
		})
	}
	// A reader refuses an entry whose broker is not a member.
	holderOnly := func(id string) (ed25519.PublicKey, bool) { return f.members(id) }
	noBroker := func(id string) (ed25519.PublicKey, bool) {
		if id == "csc-hub" {
			return nil, false
		}
		return holderOnly(id)
	}
	if _, _, err := OpenVerify(f.key, f.lookup, f.entryPub, s, noBroker); !errors.Is(err, ErrUnknownHolder) {
		t.Fatalf("unknown broker: %v", err)
	}
}

// TestShieldedHidesHolder: a reader with the seal key (and a broker that is
// not the one named) finds no form of the holder's node id, category or
// public key in the sealed part, the entry bytes or what opening returns.
func TestShieldedHidesHolder(t *testing.T) {
	f := newShieldFixture()
	s := f.sealShielded(t, f.id)
	enc := entry(f.lookup, f.entryPub, false, s)
	o, err := OpenEntry(f.key, enc, f.members)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := decrypt(f.key, f.lookup, f.entryPub, s)
	if err != nil {
		t.Fatal(err)
	}
	holderPub := f.nodeKey.Public().(ed25519.PublicKey)
	secrets := [][]byte{[]byte(f.id.NodeID), []byte(f.id.Category), holderPub}
	var haystacks = map[string][]byte{
		"sealed part":       s,
		"entry":             enc,
		"decrypted payload": plain,
		"opened view":       []byte(strings.Join([]string{o.NodeID, o.Category, o.Shield.Broker}, "|")),
	}
	for _, sec := range secrets {
		forms := [][]byte{sec, []byte(hex.EncodeToString(sec)), []byte(base64.StdEncoding.EncodeToString(sec)), []byte(base64.RawURLEncoding.EncodeToString(sec))}
		for where, hay := range haystacks {
			for _, form := range forms {
				if bytes.Contains(bytes.ToLower(hay), bytes.ToLower(form)) {
					t.Errorf("%s contains %q", where, form)
				}
			}
		}
	}
}

// TestShieldedLengthFixed: the sealed part's length does not depend on the
// holder's id or category (only the broker id is in clear to a reader).
func TestShieldedLengthFixed(t *testing.T) {
	f := newShieldFixture()
	want := NonceSize + 2 + len("csc-hub") + 8 + InnerSize + Overhead
	for _, id := range []Identity{
		{NodeID: "a", RegisteredAt: 1},
		{NodeID: strings.Repeat("h", MaxNodeIDLen), Category: strings.Repeat("c", MaxCategoryLen), RegisteredAt: 2},
		f.id,
	} {
		if got := len(f.sealShielded(t, id)); got != want {
			t.Errorf("%d-byte id, %d-byte category: sealed part of %d bytes, want %d", len(id.NodeID), len(id.Category), got, want)
		}
	}
}

func TestSealShieldedRejects(t *testing.T) {
	f := newShieldFixture()
	tests := []struct {
		name   string
		id     Identity
		broker string
		pub    ed25519.PublicKey
	}{
		{"empty holder", Identity{}, "csc-hub", f.brokerPub},
		{"empty broker", f.id, "", f.brokerPub},
		{"long broker", f.id, strings.Repeat("b", MaxNodeIDLen+1), f.brokerPub},
		{"short broker key", f.id, "csc-hub", f.brokerPub[:5]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SealShielded(fixedReader(1), f.key, f.lookup, f.entryPub, f.nodeKey, tt.id, tt.broker, tt.pub); err == nil {
				t.Fatal("sealed")
			}
		})
	}
}

// FuzzParseShielded: the shielded payload parser is bounded and
// round-trips what it accepts.
func FuzzParseShielded(f *testing.F) {
	f.Add(AppendShielded(nil, Shield{Broker: "csc-hub", Inner: make([]byte, InnerSize)}, 1767225600))
	f.Add([]byte{PayloadShielded, 0})
	f.Add([]byte{PayloadShielded, 200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, reg, err := ParseShielded(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendShielded(nil, sh, reg), b) {
			t.Fatal("shielded payload does not round-trip")
		}
	})
}

// FuzzOpenShield: arbitrary inner blobs never panic and open only as the
// holder's own (HPKE seals with fresh randomness, so a worker process's
// fixture has another blob); the inner plaintext parser refuses what is not
// canonical.
func FuzzOpenShield(f *testing.F) {
	fx := newShieldFixture()
	s := fx.sealShielded(f, fx.id)
	_, sh, err := OpenVerify(fx.key, fx.lookup, fx.entryPub, s, fx.members)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sh.Inner, []byte{})
	f.Add(make([]byte, InnerSize), appendPadded(appendPadded(nil, "x", MaxNodeIDLen), "", MaxCategoryLen))
	f.Fuzz(func(t *testing.T, inner, plain []byte) {
		id, err := OpenShield(fx.brokerKey, "csc-hub", fx.lookup, fx.entryPub, inner, fx.members)
		if err == nil && id != fx.id {
			t.Fatalf("a blob that is not the holder's opened as %+v", id)
		}
		if id, sig, err := parseInner(plain); err == nil {
			back := appendPadded(appendPadded(nil, id.NodeID, MaxNodeIDLen), id.Category, MaxCategoryLen)
			back = append(back, plain[len(back):len(back)+8]...)
			if !bytes.Equal(append(back, sig...), plain) {
				t.Fatal("inner plaintext does not round-trip")
			}
		}
	})
}

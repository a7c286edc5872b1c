package federation

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"

	"github.com/signpost-federation/signpost/federation/dkg"
)

// localDKG runs a t-of-n DKG in process among node-1 … node-n (every
// message delivered at once) and returns the key set and the shares.
func localDKG(t testing.TB, tt, n int) (*dkg.KeySet, []*dkg.Share) {
	t.Helper()
	cfg := dkg.Config{Purpose: "safeguarding", Epoch: 1, T: tt, Start: time.Now(), PhaseTimeout: time.Minute}
	for i := 1; i <= n; i++ {
		cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: fmt.Sprintf("node-%d", i), Index: uint16(i)})
	}
	return localRun(t, cfg, nil)
}

// localRun runs the session of cfg in process: a DKG, or with cfg.Reshare
// a reshare whose dealers deal the shares in old (by node id).
func localRun(t testing.TB, cfg dkg.Config, old map[string]*dkg.Share) (*dkg.KeySet, []*dkg.Share) {
	t.Helper()
	type env struct {
		from string
		m    dkg.Message
	}
	names := map[string]bool{}
	for _, p := range cfg.Participants {
		names[p.NodeID] = true
	}
	if cfg.Reshare != nil {
		for _, h := range cfg.Reshare.Holders {
			names[h.NodeID] = true
		}
	}
	ss := map[string]*dkg.Session{}
	var q []env
	for _, name := range slices.Sorted(maps.Keys(names)) {
		var s *dkg.Session
		var out []dkg.Message
		var err error
		if cfg.Reshare == nil {
			s, out, err = dkg.New(cfg, name, rand.Reader)
		} else {
			s, out, err = dkg.NewReshare(cfg, name, old[name], rand.Reader)
		}
		if err != nil {
			t.Fatal(err)
		}
		ss[name] = s
		for _, m := range out {
			q = append(q, env{name, m})
		}
	}
	for len(q) > 0 {
		e := q[0]
		q = q[1:]
		for _, to := range ss[e.from].Peers() {
			out, err := ss[to].Handle(e.from, &e.m, cfg.Start)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out {
				q = append(q, env{to, m})
			}
		}
	}
	var ks *dkg.KeySet
	var shares []*dkg.Share
	for _, name := range slices.Sorted(maps.Keys(names)) {
		r, err := ss[name].Result()
		if err != nil {
			t.Fatal(err)
		}
		ks = &r.KeySet
		if r.Share != nil {
			shares = append(shares, r.Share)
		}
	}
	return ks, shares
}

// recoverKey reconstructs k from t shares — INSIDE TESTS ONLY.
func recoverKey(t testing.TB, tt int, shares []*dkg.Share) group.Scalar {
	t.Helper()
	var ss []secretsharing.Share
	for _, sh := range shares[:tt] {
		v := group.Ristretto255.NewScalar()
		if err := v.UnmarshalBinary(sh.Value); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, secretsharing.Share{ID: group.Ristretto255.NewScalar().SetUint64(uint64(sh.Index)), Value: v})
	}
	k, err := secretsharing.Recover(uint(tt-1), ss)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signedRecord(t testing.TB, a *Authority, ks *dkg.KeySet, serial uint64) *KeyRecord {
	t.Helper()
	r := KeyRecordFromKeySet(ks)
	r.Serial = serial
	r.NotBefore = time.Now().Add(-time.Minute)
	kr, err := a.SignKeyRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyRecordSignVerify(t *testing.T) {
	a := mustAuthority(t)
	ks, _ := localDKG(t, 2, 3)
	kr := signedRecord(t, a, ks, 5)
	if err := kr.Verify(a.PublicKey()); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSignedKeyRecord(kr.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(a.PublicKey()); err != nil || !bytes.Equal(back.Encode(), kr.Encode()) {
		t.Fatalf("round trip: %v", err)
	}
	if back.N() != 3 || back.T != 2 || back.Serial != 5 || back.Session != ks.Session {
		t.Fatalf("decoded %s", back)
	}
	if err := kr.Verify(mustAuthority(t).PublicKey()); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("another authority's key: %v", err)
	}
	// Every field is covered by the signature.
	for _, tc := range []struct {
		name string
		edit func(*KeyRecord)
	}{
		{"serial", func(r *KeyRecord) { r.Serial++ }},
		{"t", func(r *KeyRecord) { r.T = 3 }},
		{"epoch", func(r *KeyRecord) { r.Epoch++ }},
		{"issuer", func(r *KeyRecord) { r.Issuers[0].NodeID = "node-9" }},
		{"retire", func(r *KeyRecord) { r.RetireAt = r.NotBefore.Add(time.Hour) }},
	} {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			c := *kr
			c.Issuers = slices.Clone(kr.Issuers)
			tc.edit(&c)
			if err := c.Verify(a.PublicKey()); !errors.Is(err, ErrDescriptorForged) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// The authority refuses to sign a record that is not a consistent key.
	for _, tc := range []struct {
		name, want string
		edit       func(*KeyRecord)
	}{
		{"t above n", "t = 4", func(r *KeyRecord) { r.T = 4 }},
		{"bad purpose", "purpose", func(r *KeyRecord) { r.Purpose = "Direct Care" }},
		{"duplicate index", "used twice", func(r *KeyRecord) { r.Issuers[1].Index = r.Issuers[0].Index }},
		{"foreign public share", "not on the key's polynomial", func(r *KeyRecord) {
			other, _ := localDKG(t, 2, 3)
			r.Issuers[2].PublicShare = other.Issuers[2].Key
		}},
		{"no serial", "serial", func(r *KeyRecord) { r.Serial = 0 }},
		{"retire before start", "retire-at", func(r *KeyRecord) { r.RetireAt = r.NotBefore.Add(-time.Hour) }},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			r := KeyRecordFromKeySet(ks)
			r.Serial, r.NotBefore = 1, time.Now()
			tc.edit(&r)
			_, err := a.SignKeyRecord(r)
			if !errors.Is(err, ErrKeyRecordInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrKeyRecordInvalid mentioning %q", err, tc.want)
			}
		})
	}
	enc := kr.Encode()
	for i := range enc {
		if _, err := DecodeSignedKeyRecord(enc[:i]); err == nil {
			t.Fatalf("truncated record of %d bytes decoded", i)
		}
	}
}

func FuzzDecodeSignedKeyRecord(f *testing.F) {
	a := mustAuthority(f)
	ks, _ := localDKG(f, 2, 3)
	f.Add(signedRecord(f, a, ks, 1).Encode())
	ks5, _ := localDKG(f, 3, 5)
	r := KeyRecordFromKeySet(ks5)
	r.Serial, r.NotBefore, r.RetireAt = 9, time.Now(), time.Now().Add(time.Hour)
	kr, err := a.SignKeyRecord(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kr.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeSignedKeyRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatal("decode/encode not canonical")
		}
		if r.Verify(a.PublicKey()) == nil && r.check() != nil {
			t.Fatal("a verified record fails its checks")
		}
	})
}

// TestShareFile: a share file is written owner-only and refused, with the
// fix named, once group or others may read it.
func TestShareFile(t *testing.T) {
	_, shares := localDKG(t, 2, 3)
	path := filepath.Join(t.TempDir(), "s.share")
	if err := WriteShare(path, shares[0]); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	got, err := LoadShare(path)
	if err != nil || !bytes.Equal(got.Encode(), shares[0].Encode()) {
		t.Fatalf("load: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadShare(path)
		if !errors.Is(err, ErrUnsafeShareFile) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %o: %v", mode, err)
		}
	}
}

// TestKeyFiles: records and results round-trip through their files, and a
// records file with a record of another authority is refused.
func TestKeyFiles(t *testing.T) {
	a := mustAuthority(t)
	ks, _ := localDKG(t, 2, 3)
	dir := t.TempDir()
	rp := filepath.Join(dir, "result.pem")
	if err := WriteDKGResult(rp, ks); err != nil {
		t.Fatal(err)
	}
	back, err := LoadDKGResult(rp)
	if err != nil || !bytes.Equal(back.Encode(), ks.Encode()) {
		t.Fatalf("result: %v", err)
	}
	kp := filepath.Join(dir, "keys.pem")
	recs := []*KeyRecord{signedRecord(t, a, ks, 1), signedRecord(t, a, ks, 2)}
	if err := WriteKeyRecords(kp, recs); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeyRecords(kp, a.PublicKey())
	if err != nil || len(got) != 2 || got[1].Serial != 2 {
		t.Fatalf("records: %v", err)
	}
	if _, err := LoadKeyRecords(kp, mustAuthority(t).PublicKey()); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("another authority: %v", err)
	}
}

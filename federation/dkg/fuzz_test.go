package dkg

import (
	"bytes"
	"testing"
)

// fuzzSeeds adds every message of an honest t=2, n=3 run and its results.
func fuzzSeeds(f *testing.F, pick func(w *network, ks *KeySet, shares []*Share) [][]byte) {
	w := newNetwork(f)
	w.start(names(3), freshStarter(testConfig(2, 3), 1))
	w.run()
	ks, shares := w.results(names(3)...)
	for _, b := range pick(w, ks, shares) {
		f.Add(b)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	fuzzSeeds(f, func(w *network, _ *KeySet, _ []*Share) [][]byte { return w.wire })
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add(testConfig(2, 3).Encode())
	f.Add(testConfig(3, 5).Encode())
	fuzzSeeds(f, func(_ *network, ks *KeySet, _ []*Share) [][]byte {
		c := testConfig(3, 4)
		c.Reshare = &ReshareFrom{T: ks.T, Holders: ks.Issuers, GroupKey: ks.GroupKey}
		return [][]byte{c.Encode()}
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeConfig(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
	})
}

func FuzzDecodeKeySet(f *testing.F) {
	fuzzSeeds(f, func(_ *network, ks *KeySet, _ []*Share) [][]byte { return [][]byte{ks.Encode()} })
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := DecodeKeySet(b)
		if err != nil {
			return
		}
		if !bytes.Equal(ks.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
		if err := ks.Validate(); err != nil {
			t.Fatalf("accepted an invalid key set: %v", err)
		}
	})
}

func FuzzDecodeShare(f *testing.F) {
	fuzzSeeds(f, func(_ *network, _ *KeySet, shares []*Share) [][]byte { return [][]byte{shares[0].Encode()} })
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeShare(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

// FuzzSessionHandle feeds any decodable message, from any participant and
// at any time, to a session part-way through a run: it must never panic,
// and an honest session's result, if it finishes, must be a valid key set.
func FuzzSessionHandle(f *testing.F) {
	fuzzSeeds(f, func(w *network, _ *KeySet, _ []*Share) [][]byte { return w.wire })
	cfg := testConfig(2, 3)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		s, _, err := New(cfg, "issuer-1", seeded(1, "issuer-1"))
		if err != nil {
			t.Fatal(err)
		}
		for _, from := range []string{"issuer-2", "issuer-3"} {
			_, _ = s.Handle(from, m, t0)
		}
		_ = s.Tick(t0.Add(10 * phase))
		if r, err := s.Result(); err == nil {
			if err := r.KeySet.Validate(); err != nil {
				t.Fatalf("finished with an invalid key set: %v", err)
			}
		}
		_ = s.Status()
	})
}

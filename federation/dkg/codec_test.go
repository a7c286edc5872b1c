package dkg

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := testConfig(2, 3)
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"good", func(*Config) {}, ""},
		{"bad purpose", func(c *Config) { c.Purpose = "Safe guarding" }, "purpose"},
		{"t zero", func(c *Config) { c.T = 0 }, "t = 0"},
		{"t above n", func(c *Config) { c.T = 4 }, "t = 4"},
		{"index zero", func(c *Config) { c.Participants[0].Index = 0 }, "index 0"},
		{"duplicate index", func(c *Config) { c.Participants[1].Index = 1 }, "used twice"},
		{"duplicate node", func(c *Config) { c.Participants[1].NodeID = "issuer-1" }, "named twice"},
		{"bad node id", func(c *Config) { c.Participants[0].NodeID = "Issuer" }, "node id"},
		{"no start", func(c *Config) { c.Start = time.Time{} }, "start"},
		{"no timeout", func(c *Config) { c.PhaseTimeout = 0 }, "timeout"},
		{"too many", func(c *Config) {
			for i := 4; i <= MaxParticipants+1; i++ {
				c.Participants = append(c.Participants, Participant{NodeID: "n" + strings.Repeat("x", i%50) + string(rune('a'+i%26)), Index: uint16(i)})
			}
		}, "must be 1 to 64"},
		{"reshare bad group key", func(c *Config) {
			c.Reshare = &ReshareFrom{T: 1, Holders: []PublicShare{{NodeID: "old", Index: 1, Key: elementBytes(g.Generator())}}, GroupKey: make([]byte, 32)}
		}, "identity"},
		{"reshare t above holders", func(c *Config) {
			c.Reshare = &ReshareFrom{T: 2, Holders: []PublicShare{{NodeID: "old", Index: 1, Key: elementBytes(g.Generator())}}, GroupKey: elementBytes(g.Generator())}
		}, "old t = 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Participants = append([]Participant(nil), good.Participants...)
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

// TestConfigEncoding: the encoding is canonical (participant order and
// sub-millisecond times do not change the id) and round-trips.
func TestConfigEncoding(t *testing.T) {
	a := testConfig(2, 3)
	b := testConfig(2, 3)
	b.Participants[0], b.Participants[2] = b.Participants[2], b.Participants[0]
	b.Start = b.Start.Add(300 * time.Microsecond)
	if a.ID() != b.ID() {
		t.Fatal("equivalent configs have different ids")
	}
	c := a
	c.Epoch++
	if a.ID() == c.ID() {
		t.Fatal("different configs share an id")
	}
	d, err := DecodeConfig(b.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != a.ID() {
		t.Fatal("decoded config has another id")
	}
	enc := a.Encode()
	for i := range enc {
		if _, err := DecodeConfig(enc[:i]); err == nil {
			t.Fatalf("truncated config of %d bytes decoded", i)
		}
	}
	if _, err := DecodeConfig(append(bytes.Clone(enc), 0)); err == nil {
		t.Fatal("config with a trailing byte decoded")
	}
}

// TestDecodeMessageRefuses: structural refusals of the message decoder.
func TestDecodeMessageRefuses(t *testing.T) {
	cfg := testConfig(2, 3)
	s, hello, err := New(cfg, "issuer-1", seeded(1, "issuer-1"))
	if err != nil {
		t.Fatal(err)
	}
	good := hello[0].Encode()
	if _, err := DecodeMessage(good); err != nil {
		t.Fatal(err)
	}
	other := testConfig(2, 3)
	other.Epoch++
	wrongSession := hello[0]
	wrongSession.Session = other.ID()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("XXXXX"), good[5:]...)},
		{"unknown kind", append(append([]byte(messageMagic), 9), make([]byte, 32)...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"config of another session", wrongSession.Encode()},
		{"too large", make([]byte, MaxMessageSize+1)},
		{"unsorted complaints", (&Message{Session: s.ID(), Kind: KindComplaints, Accused: []uint16{2, 1}}).Encode()},
		{"complaint about index 0", (&Message{Session: s.ID(), Kind: KindComplaints, Accused: []uint16{0}}).Encode()},
		{"deal without commitments", (&Message{Session: s.ID(), Kind: KindDeal}).Encode()},
		{"invalid commitment", (&Message{Session: s.ID(), Kind: KindDeal, Commitments: [][]byte{bytes.Repeat([]byte{0xff}, 32)}}).Encode()},
		{"non-canonical scalar", (&Message{Session: s.ID(), Kind: KindJustification, Commitments: [][]byte{elementBytes(g.Generator())},
			Shares: []IndexedBytes{{Index: 1, Data: bytes.Repeat([]byte{0xff}, 32)}}}).Encode()},
		{"short hash", (&Message{Session: s.ID(), Kind: KindConfirm, Hash: make([]byte, 31)}).Encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMessage(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

// TestHandleRefuses: the session refuses messages their sender may not send.
func TestHandleRefuses(t *testing.T) {
	cfg := testConfig(2, 3)
	s, _, err := New(cfg, "issuer-1", seeded(1, "issuer-1"))
	if err != nil {
		t.Fatal(err)
	}
	_, h2, _ := New(cfg, "issuer-2", seeded(1, "issuer-2"))
	other := testConfig(2, 3)
	other.Epoch++
	_, ho, _ := New(other, "issuer-2", seeded(1, "issuer-2"))
	if _, err := s.Handle("issuer-9", &h2[0], t0); !errors.Is(err, ErrNotParticipant) {
		t.Fatalf("stranger: %v", err)
	}
	if _, err := s.Handle("issuer-1", &h2[0], t0); !errors.Is(err, ErrNotParticipant) {
		t.Fatalf("from self: %v", err)
	}
	if _, err := s.Handle("issuer-2", &ho[0], t0); !errors.Is(err, ErrWrongSession) {
		t.Fatalf("other session: %v", err)
	}
	if _, err := s.Handle("issuer-2", &h2[0], t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle("issuer-2", &h2[0], t0); err != nil {
		t.Fatalf("a retransmission is not an error: %v", err)
	}
	_, h2b, _ := New(cfg, "issuer-2", seeded(2, "issuer-2"))
	if _, err := s.Handle("issuer-2", &h2b[0], t0); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("second, different hello: %v", err)
	}
	// The hello deadline passes without issuer-3: the session deals, and a
	// late hello is refused.
	out := s.Tick(t0.Add(phase))
	if len(out) != 1 || out[0].Kind != KindDeal || len(out[0].Shares) != 2 {
		t.Fatalf("after the hello deadline: %+v", out)
	}
	_, h3, _ := New(cfg, "issuer-3", seeded(1, "issuer-3"))
	if _, err := s.Handle("issuer-3", &h3[0], t0.Add(phase)); !errors.Is(err, ErrLate) {
		t.Fatalf("late hello: %v", err)
	}
	if st := s.Status(); st.Phase != PhaseDeal || len(st.Excluded) != 1 || st.Excluded[0].NodeID != "issuer-3" ||
		len(st.Waiting) != 1 || st.Waiting[0] != "issuer-2" || len(st.Answered) != 1 || st.Answered[0] != "issuer-1" {
		t.Fatalf("status %+v", st)
	}
	if _, err := s.Result(); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("result before the end: %v", err)
	}
}

// TestKeySetValidate: a key set whose public shares are not on one
// polynomial with the group key at 0 is refused.
func TestKeySetValidate(t *testing.T) {
	w := newNetwork(t)
	w.start(names(3), freshStarter(testConfig(2, 3), seed(t)))
	w.run()
	ks, _ := w.results(names(3)...)
	if _, err := DecodeKeySet(ks.Encode()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*KeySet)
	}{
		{"swapped public share", func(k *KeySet) { k.Issuers[2].Key = k.Issuers[1].Key }},
		{"other group key", func(k *KeySet) { k.GroupKey = elementBytes(g.Generator()) }},
		{"t above n", func(k *KeySet) { k.T = 4 }},
		{"t lowered", func(k *KeySet) { k.T = 1 }},
		{"unsorted", func(k *KeySet) { k.Issuers[0], k.Issuers[1] = k.Issuers[1], k.Issuers[0] }},
		{"identity share", func(k *KeySet) { k.Issuers[0].Key = make([]byte, 32) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := *ks
			k.Issuers = append([]PublicShare(nil), ks.Issuers...)
			tc.edit(&k)
			if err := k.Validate(); !errors.Is(err, ErrInvalidKeySet) {
				t.Fatalf("got %v, want ErrInvalidKeySet", err)
			}
			if _, err := DecodeKeySet(k.Encode()); err == nil {
				t.Fatal("decoded")
			}
		})
	}
}

// TestStatusJSON: a status encodes with the session id in hex and the
// phase by name, and the id parses back.
func TestStatusJSON(t *testing.T) {
	s, _, err := New(testConfig(2, 3), "issuer-1", seeded(1, "issuer-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.Status())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Session":"`+s.ID().String()+`"`) || !strings.Contains(string(b), `"Phase":"hello"`) {
		t.Fatalf("status JSON %s", b)
	}
	var back struct{ Session SessionID }
	if err := json.Unmarshal(b, &back); err != nil || back.Session != s.ID() {
		t.Fatalf("session id back: %v", err)
	}
	if _, err := ParseSessionID("zz"); err == nil {
		t.Fatal("parsed a bad id")
	}
}

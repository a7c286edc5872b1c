package locator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/sealed"
)

// The sealed holder format lives in package wasm/sealed; its domain label
// must stay the one this package's format documents.
func TestSealedDomainIsLocators(t *testing.T) {
	if holderSigDomain != sealed.HolderSigDomain {
		t.Fatal("holder signature domain differs from package sealed's")
	}
}

// TestPublishBytesStable pins the bytes a holder produces with a seeded
// nonce source, so that moving the format into package sealed (or any later
// change) cannot alter the entry encoding or the sealed payload unnoticed.
// The hashes were produced by the implementation before the move.
func TestPublishBytesStable(t *testing.T) {
	h := testHolder(t, 1, nil)
	live := mustPublish(t, h, 1, 1, t0.Add(time.Hour))
	dead := mustWithdraw(t, h, 1, 2, t0.Add(2*time.Hour))
	tests := []struct {
		name string
		e    *Entry
		want string // hex SHA-256 of the encoding
	}{
		{"publish", live, "ca44c03b2d640aa075c4f21bbf72a81092d43a263943ea6788359a437a90177d"},
		{"withdraw", dead, "6c3956994e4e571d45a5f47ce56464362b17bb9749243fac2d858691d852e885"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := sha256.Sum256(tt.e.Encode())
			if got := hex.EncodeToString(sum[:]); got != tt.want {
				t.Fatalf("encoding hash %s, want %s", got, tt.want)
			}
		})
	}
}

// TestReadEntryAgreesWithDecode: package sealed reads the reader's fields
// of an entry (for the wasm module, which opens entries in browsers) with
// the same bounds as DecodeEntry. Checked on built entries, their
// mutations, and the committed FuzzDecodeEntry corpus.
func TestReadEntryAgreesWithDecode(t *testing.T) {
	h := testHolder(t, 1, nil)
	live := mustPublish(t, h, 1, 1, t0.Add(time.Hour)).Encode()
	dead := mustWithdraw(t, h, 1, 2, t0.Add(time.Hour)).Encode()
	cases := map[string][]byte{"live": live, "tombstone": dead, "empty": nil, "header only": live[:headerSize]}
	for i := range live {
		b := bytes.Clone(live)
		b[i] ^= 0x81
		cases["flip "+strconv.Itoa(i)] = b
	}
	for _, n := range []int{1, headerSize - 1, len(live) - 1, len(live) + 1, MaxEncodedSize + 1} {
		b := make([]byte, n)
		copy(b, live)
		cases["length "+strconv.Itoa(n)] = b
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeEntry", "*"))
	for _, f := range files {
		if b, ok := readCorpusBytes(t, f); ok {
			cases["corpus "+filepath.Base(f)] = b
		}
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			e, derr := DecodeEntry(b)
			v, rerr := sealed.ReadEntry(b)
			if (derr == nil) != (rerr == nil) {
				t.Fatalf("DecodeEntry: %v, ReadEntry: %v", derr, rerr)
			}
			if rerr != nil {
				if !errors.Is(rerr, sealed.ErrMalformed) {
					t.Fatalf("ReadEntry error %v is not ErrMalformed", rerr)
				}
				return
			}
			if v.Lookup != e.Lookup || v.EntryPub != e.EntryPub || v.Deleted != e.Deleted || !bytes.Equal(v.Sealed, e.Sealed) {
				t.Fatal("ReadEntry and DecodeEntry disagree")
			}
		})
	}
}

// readCorpusBytes reads a one-[]byte go test fuzz corpus file.
func readCorpusBytes(t *testing.T, path string) ([]byte, bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) != 2 || !bytes.HasPrefix(lines[1], []byte("[]byte(")) {
		return nil, false
	}
	s, err := strconv.Unquote(string(bytes.TrimSuffix(bytes.TrimPrefix(lines[1], []byte("[]byte(")), []byte(")"))))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// TestOpenAgreesWithSealed: Entry.Open and sealed.OpenEntry give the same
// identity or the same reason for the same entry.
func TestOpenAgreesWithSealed(t *testing.T) {
	keys := keyring{}
	h := testHolder(t, 1, keys)
	e := mustPublish(t, h, 3, 1, t0.Add(time.Hour))
	d := mustWithdraw(t, h, 3, 2, t0.Add(time.Hour))
	tests := []struct {
		name string
		e    *Entry
		seal SealKey
		keys keyring
		want error
	}{
		{"live", e, sealN(3), keys, nil},
		{"tombstone", d, sealN(3), keys, nil},
		{"wrong seal", e, sealN(4), keys, ErrSealBroken},
		{"unknown holder", e, sealN(3), keyring{}, ErrUnknownHolder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.e.Open(tt.seal, tt.keys)
			o, serr := sealed.OpenEntry(tt.seal, tt.e.Encode(), tt.keys.NodeKey)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (serr == nil) {
				t.Fatalf("Open: %v, sealed.OpenEntry: %v, want %v", err, serr, tt.want)
			}
			if err == nil && (got.NodeID != o.NodeID || got.Category != o.Category || got.RegisteredAt.Unix() != o.RegisteredAt || got.Withdrawn != o.Withdrawn) {
				t.Fatalf("Open %+v, sealed.OpenEntry %+v", got, o)
			}
		})
	}
}

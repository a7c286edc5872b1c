package federation

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PEM block types of the federation's files (see doc.go, "Files").
const (
	pemAuthorityKey    = "SIGNPOST AUTHORITY KEY"
	pemAuthorityPublic = "SIGNPOST AUTHORITY PUBLIC KEY"
	pemGossipKey       = "SIGNPOST GOSSIP KEY"
	pemRevocations     = "SIGNPOST REVOCATION LIST"
	pemDescriptor      = "SIGNPOST NODE DESCRIPTOR"
	pemNodeKey         = "SIGNPOST NODE KEY"
	pemNodePublic      = "SIGNPOST NODE PUBLIC KEY"
)

// File names inside an authority directory.
const (
	AuthorityKeyFile    = "authority.key"
	AuthorityPublicFile = "authority.pub"
	GossipKeyFile       = "gossip.key"
	RevocationsFile     = "revocations.pem"
	serialFile          = "serial"
)

// maxFileSize bounds every file the package reads.
const maxFileSize = 16 << 20

// GossipKeySize is the length of a gossip key: AES-256 for memberlist.
const GossipKeySize = 32

// Credentials are what a node needs to take part: its signed descriptor and
// the private key matching the descriptor's public key.
type Credentials struct {
	Descriptor *SignedDescriptor
	PrivateKey ed25519.PrivateKey
}

// InitAuthorityDir creates dir (0700) with a new authority key, its public
// key, a gossip key and an empty revocation list (version 1). It refuses to
// overwrite an existing authority.
func InitAuthorityDir(dir string, now time.Time) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("federation: init %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, AuthorityKeyFile)); err == nil {
		return nil, fmt.Errorf("federation: init %s: %s already exists", dir, AuthorityKeyFile)
	}
	a, err := GenerateAuthority()
	if err != nil {
		return nil, err
	}
	gk := make([]byte, GossipKeySize)
	if _, err := rand.Read(gk); err != nil {
		return nil, fmt.Errorf("federation: generate gossip key: %w", err)
	}
	rl, err := a.SignRevocations(1, now, nil)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		name, typ string
		data      []byte
		secret    bool
	}{
		{AuthorityKeyFile, pemAuthorityKey, a.key.Seed(), true},
		{AuthorityPublicFile, pemAuthorityPublic, a.PublicKey(), false},
		{GossipKeyFile, pemGossipKey, gk, true},
		{RevocationsFile, pemRevocations, rl.Encode(), false},
	}
	for _, s := range steps {
		if err := writePEM(filepath.Join(dir, s.name), s.secret, &pem.Block{Type: s.typ, Bytes: s.data}); err != nil {
			return nil, err
		}
	}
	if err := writeFileAtomic(filepath.Join(dir, serialFile), []byte("0\n"), 0o600); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadAuthority reads the private authority key from an authority directory.
func LoadAuthority(dir string) (*Authority, error) {
	seed, err := readPEMOne(filepath.Join(dir, AuthorityKeyFile), pemAuthorityKey, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return NewAuthority(ed25519.NewKeyFromSeed(seed))
}

// EnrolInDir signs d with the directory's authority, assigning the next
// serial (persisted before the descriptor is returned).
func EnrolInDir(dir string, d Descriptor) (*SignedDescriptor, error) {
	a, err := LoadAuthority(dir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, serialFile))
	if err != nil {
		return nil, fmt.Errorf("federation: read serial: %w", err)
	}
	last, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("federation: parse serial file: %w", err)
	}
	d.Serial = last + 1
	sd, err := a.Enrol(d)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, serialFile), []byte(strconv.FormatUint(d.Serial, 10)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return sd, nil
}

// RevokeInDir adds r to the directory's revocation list, signs it as the
// next version and writes it. The returned list is what to publish.
func RevokeInDir(dir string, r Revocation, now time.Time) (*RevocationList, error) {
	a, err := LoadAuthority(dir)
	if err != nil {
		return nil, err
	}
	cur, err := LoadRevocationList(filepath.Join(dir, RevocationsFile), a.PublicKey())
	if err != nil {
		return nil, err
	}
	rl, err := a.SignRevocations(cur.Version+1, now, append(cur.Entries, r))
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, RevocationsFile), false, &pem.Block{Type: pemRevocations, Bytes: rl.Encode()}); err != nil {
		return nil, err
	}
	return rl, nil
}

// LoadAuthorityPublicKey reads an authority.pub file.
func LoadAuthorityPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := readPEMOne(path, pemAuthorityPublic, ed25519.PublicKeySize)
	return ed25519.PublicKey(b), err
}

// LoadGossipKeys reads a gossip key file: one or more 32-byte keys, the
// first being the primary (the others are accepted during rotation).
func LoadGossipKeys(path string) ([][]byte, error) {
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for _, b := range blocks {
		if b.Type != pemGossipKey || len(b.Bytes) != GossipKeySize {
			return nil, fmt.Errorf("federation: %s: want %q blocks of %d bytes", path, pemGossipKey, GossipKeySize)
		}
		keys = append(keys, b.Bytes)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("federation: %s: no gossip key", path)
	}
	return keys, nil
}

// LoadRevocationList reads and verifies a revocation list file.
func LoadRevocationList(path string, authority ed25519.PublicKey) (*RevocationList, error) {
	b, err := readPEMOne(path, pemRevocations, -1)
	if err != nil {
		return nil, err
	}
	rl, err := DecodeRevocationList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := rl.Verify(authority); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rl, nil
}

// WriteRevocationList writes rl as a PEM file.
func WriteRevocationList(path string, rl *RevocationList) error {
	return writePEM(path, false, &pem.Block{Type: pemRevocations, Bytes: rl.Encode()})
}

// WriteCredentials writes a node credentials file (mode 0600): the signed
// descriptor and, if c.PrivateKey is set, the node's private key seed.
func WriteCredentials(path string, c *Credentials) error {
	blocks := []*pem.Block{{Type: pemDescriptor, Bytes: c.Descriptor.Encode()}}
	if c.PrivateKey != nil {
		blocks = append(blocks, &pem.Block{Type: pemNodeKey, Bytes: c.PrivateKey.Seed()})
	}
	return writePEM(path, true, blocks...)
}

// LoadCredentials reads a credentials file. It checks that the private key
// matches the descriptor's public key, but not the authority signature
// (NewAgent does, with the revocation list in force).
func LoadCredentials(path string) (*Credentials, error) {
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	var c Credentials
	for _, b := range blocks {
		switch {
		case b.Type == pemDescriptor && c.Descriptor == nil:
			if c.Descriptor, err = DecodeSignedDescriptor(b.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		case b.Type == pemNodeKey && c.PrivateKey == nil && len(b.Bytes) == ed25519.SeedSize:
			c.PrivateKey = ed25519.NewKeyFromSeed(b.Bytes)
		default:
			return nil, fmt.Errorf("federation: %s: unexpected PEM block %q", path, b.Type)
		}
	}
	if c.Descriptor == nil || c.PrivateKey == nil {
		return nil, fmt.Errorf("federation: %s: need a descriptor and a node key", path)
	}
	if !bytes.Equal(c.PrivateKey.Public().(ed25519.PublicKey), c.Descriptor.Descriptor.PublicKey) {
		return nil, fmt.Errorf("federation: %s: node key does not match descriptor", path)
	}
	return &c, nil
}

// LoadNodePublicKey reads a PEM "SIGNPOST NODE PUBLIC KEY" file, for
// enrolling a node whose private key never leaves it.
func LoadNodePublicKey(path string) (ed25519.PublicKey, error) {
	b, err := readPEMOne(path, pemNodePublic, ed25519.PublicKeySize)
	return ed25519.PublicKey(b), err
}

// WriteNodePublicKey writes pub as a PEM "SIGNPOST NODE PUBLIC KEY" file.
func WriteNodePublicKey(path string, pub ed25519.PublicKey) error {
	return writePEM(path, false, &pem.Block{Type: pemNodePublic, Bytes: pub})
}

func readPEM(path string) ([]*pem.Block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	defer f.Close()
	buf := make([]byte, maxFileSize+1)
	n, _ := readFull(f, buf)
	if n > maxFileSize {
		return nil, fmt.Errorf("federation: %s larger than %d bytes", path, maxFileSize)
	}
	blocks, err := decodePEMBlocks(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", path, err)
	}
	return blocks, nil
}

// decodePEMBlocks parses a sequence of PEM blocks with nothing but
// whitespace around them and no headers.
func decodePEMBlocks(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		if len(bytes.TrimSpace(rest)) == 0 {
			break
		}
		b, r := pem.Decode(rest)
		if b == nil {
			return nil, errors.New("not a PEM file or trailing garbage")
		}
		if len(b.Headers) != 0 {
			return nil, errors.New("PEM headers are not allowed")
		}
		blocks = append(blocks, b)
		rest = r
	}
	return blocks, nil
}

func readPEMOne(path, typ string, size int) ([]byte, error) {
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	if len(blocks) != 1 || blocks[0].Type != typ || (size >= 0 && len(blocks[0].Bytes) != size) {
		return nil, fmt.Errorf("federation: %s: want one %q block", path, typ)
	}
	return blocks[0].Bytes, nil
}

func readFull(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func writePEM(path string, secret bool, blocks ...*pem.Block) error {
	var buf bytes.Buffer
	for _, b := range blocks {
		if err := pem.Encode(&buf, b); err != nil {
			return fmt.Errorf("federation: encode %s: %w", path, err)
		}
	}
	mode := os.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	return writeFileAtomic(path, buf.Bytes(), mode)
}

// writeFileAtomic writes data to a temporary file with mode, syncs it and
// renames it over path, so a crash leaves either the old or the new file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("federation: write %s: %w", path, err)
	}
	return nil
}

package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// PublicKeyFileName is the usual name, in the data directory, of the file
// holding the public key that verifies the log's signatures: FileName +
// ".pub". The node writes it at start; `signpost audit verify` reads it by
// default and `signpost audit pubkey` prints it.
const PublicKeyFileName = FileName + ".pub"

// ErrKeyMismatch means the key that signs the log is not the one its public
// key file names: the node's key changed (a rotation, or the wrong data
// directory), so the log's lines would no longer verify.
var ErrKeyMismatch = errors.New("audit: the signing key does not match the log's public key file")

// FormatPublicKey is the text form of a public key in the key file and on
// the command line: 64 lower-case hex digits.
func FormatPublicKey(pub ed25519.PublicKey) string { return hex.EncodeToString(pub) }

// ParsePublicKey reads the text form of a public key (surrounding white
// space ignored).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: a public key is %d bytes of hex", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ReadPublicKey reads a public key file written by [EnsurePublicKey].
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	pub, err := ParsePublicKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// EnsurePublicKey writes pub to path (mode 0644: it is public) if the file
// does not exist, and otherwise checks that it names pub, returning
// [ErrKeyMismatch] if not. A node calls it before opening its log, so that
// the key verifiers use is always beside the log it verifies.
func EnsurePublicKey(path string, pub ed25519.PublicKey) error {
	have, err := ReadPublicKey(path)
	switch {
	case err == nil:
		if !bytes.Equal(have, pub) {
			return fmt.Errorf("%w: %s holds %s, the node signs with %s", ErrKeyMismatch, path, FormatPublicKey(have), FormatPublicKey(pub))
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("audit: public key: %w", err)
	}
	if _, err := f.WriteString(FormatPublicKey(pub) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("audit: public key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: public key: %w", err)
	}
	return f.Close()
}

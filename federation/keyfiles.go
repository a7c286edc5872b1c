package federation

import (
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/signpost-federation/signpost/federation/dkg"
)

// PEM block types of the key lifecycle's files.
const (
	pemKeyRecord = "SIGNPOST KEY RECORD"
	pemDKGResult = "SIGNPOST DKG RESULT"
	pemKeyShare  = "SIGNPOST KEY SHARE"
)

// KeyRecordsFile is the file in an agent's DataDir holding the key records
// in force.
const KeyRecordsFile = "keyrecords.pem"

// ErrUnsafeShareFile means a share file may be read or changed by users
// other than the node's: it is refused, as ssh refuses a private key others
// can read, naming the file and the fix.
var ErrUnsafeShareFile = errors.New("federation: unsafe permissions on key share file")

// LoadKeyRecords reads a file of signed key records (one or more PEM
// blocks) and verifies each under authority.
func LoadKeyRecords(path string, authority []byte) ([]*KeyRecord, error) {
	blocks, err := readPEM(path)
	if err != nil {
		return nil, err
	}
	return keyRecordsFromBlocks(path, blocks, authority)
}

// ParseKeyRecords is LoadKeyRecords for a file's contents received another
// way (an operator uploading a signed record to a node); name is used in
// messages only.
func ParseKeyRecords(name string, data []byte, authority []byte) ([]*KeyRecord, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("federation: %s larger than %d bytes", name, maxFileSize)
	}
	blocks, err := decodePEMBlocks(data)
	if err != nil {
		return nil, fmt.Errorf("federation: %s: %w", name, err)
	}
	return keyRecordsFromBlocks(name, blocks, authority)
}

func keyRecordsFromBlocks(name string, blocks []*pem.Block, authority []byte) ([]*KeyRecord, error) {
	if len(blocks) == 0 {
		return nil, fmt.Errorf("federation: %s: no key record", name)
	}
	if len(blocks) > maxKeyRecords {
		return nil, fmt.Errorf("federation: %s: %d key records, max %d", name, len(blocks), maxKeyRecords)
	}
	var rs []*KeyRecord
	for i, b := range blocks {
		if b.Type != pemKeyRecord {
			return nil, fmt.Errorf("federation: %s: block %d is %q, want %q", name, i, b.Type, pemKeyRecord)
		}
		r, err := DecodeSignedKeyRecord(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", name, i, err)
		}
		if err := r.Verify(authority); err != nil {
			return nil, fmt.Errorf("%s: block %d: %w", name, i, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// EncodeDKGResult is the contents of the file WriteDKGResult writes, for
// an operator fetching a node's result to sign it offline.
func EncodeDKGResult(ks *dkg.KeySet) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemDKGResult, Bytes: ks.Encode()})
}

// WriteKeyRecords writes signed key records as a PEM file (public: 0644).
func WriteKeyRecords(path string, rs []*KeyRecord) error {
	return writeKeyRecords(path, rs, false)
}

func writePEMBlocks(path string, secret bool, typ string, bs [][]byte) error {
	blocks := make([]*pem.Block, len(bs))
	for i, b := range bs {
		blocks[i] = &pem.Block{Type: typ, Bytes: b}
	}
	return writePEM(path, secret, blocks...)
}

// WriteDKGResult writes the public result of a DKG (what the authority
// signs with `signpost federation sign-key`).
func WriteDKGResult(path string, ks *dkg.KeySet) error {
	return writePEM(path, false, &pem.Block{Type: pemDKGResult, Bytes: ks.Encode()})
}

// writeDKGResultOwnerOnly writes the result with mode 0600: it sits in a
// node's data directory, where a node refuses files others can read
// unless they are public by name; nothing in it is secret.
func writeDKGResultOwnerOnly(path string, ks *dkg.KeySet) error {
	return writePEM(path, true, &pem.Block{Type: pemDKGResult, Bytes: ks.Encode()})
}

// LoadDKGResult reads and validates a DKG result file.
func LoadDKGResult(path string) (*dkg.KeySet, error) {
	b, err := readPEMOne(path, pemDKGResult, -1)
	if err != nil {
		return nil, err
	}
	ks, err := dkg.DecodeKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ks, nil
}

// WriteShare writes a holder's share file, owner-only (0600). The share is
// SECRET.
func WriteShare(path string, s *dkg.Share) error {
	return writePEM(path, true, &pem.Block{Type: pemKeyShare, Bytes: s.Encode()})
}

// LoadShare reads a share file. It refuses (ErrUnsafeShareFile) a file that
// group or others may read or write, and names the chmod that fixes it.
func LoadShare(path string) (*dkg.Share, error) {
	if err := checkShareFile(path); err != nil {
		return nil, err
	}
	b, err := readPEMOne(path, pemKeyShare, -1)
	if err != nil {
		return nil, err
	}
	s, err := dkg.DecodeShare(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func checkShareFile(path string) error {
	if runtime.GOOS == "windows" {
		return nil // no POSIX modes; ACLs are the operator's
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s is accessible by group or others (mode %04o); run: chmod 600 %s",
			ErrUnsafeShareFile, path, perm, path)
	}
	return nil
}

package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
)

// MarshalText writes the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(h[:])), nil
}

// UnmarshalText reads a hash written by MarshalText.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("audit: hash must be %d hex digits", 2*len(h))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("audit: hash is not hex")
	}
	return nil
}

// String is the hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// TreeHead is the state of the log after Size events: the RFC 9162 root hash
// of their leaves, optionally signed by the node's Ed25519 key. Another agency
// that keeps a signed tree head (a witness) can later demand a consistency
// proof and so detect any rewrite of the first Size lines.
type TreeHead struct {
	Size uint64 `json:"size"`
	Root Hash   `json:"root"`
	// Sig is an Ed25519 signature over [TreeHead.Checkpoint], or empty when
	// the log has no signer.
	Sig []byte `json:"sig,omitempty"`
}

// checkpointOrigin names the log in the signed text, so a signature over an
// audit head cannot be replayed as any other kind of signed statement.
const checkpointOrigin = "signpost-audit/v1"

// Checkpoint is the text the node signs, in the manner of a transparency-log
// checkpoint: the origin line, the size in decimal and the root in base64,
// each ending in a newline.
func (t TreeHead) Checkpoint() []byte {
	b := make([]byte, 0, 96)
	b = append(b, checkpointOrigin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, t.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, t.Root[:])
	b = append(b, '\n')
	return b
}

// VerifySignature checks Sig against the node's public key.
func (t TreeHead) VerifySignature(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key has %d bytes", ErrProofInvalid, len(pub))
	}
	if len(t.Sig) == 0 {
		return fmt.Errorf("%w: tree head is not signed", ErrTampered)
	}
	if !ed25519.Verify(pub, t.Checkpoint(), t.Sig) {
		return fmt.Errorf("%w: tree head signature does not verify", ErrTampered)
	}
	return nil
}

// Receipt is what [Log.Append] returns once the event is on disk: its index
// (0-based; line Index+1 of the file) and the tree head that includes it.
type Receipt struct {
	Index uint64   `json:"index"`
	Head  TreeHead `json:"head"`
}

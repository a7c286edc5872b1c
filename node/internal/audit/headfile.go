package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// HeadFileName is the usual name, in the data directory, of the file where
// the node saves its latest signed tree head (FileName + ".head"): at every
// witnessing round and at Close. [Open] and `signpost audit verify` check
// the log against it, so lines cut from the end after a clean stop are
// caught even before the witnesses are asked. Deleting it as well is caught
// by the witnesses only.
const HeadFileName = FileName + ".head"

// maxHeadFile bounds the head file and a head on the wire.
const maxHeadFile = 4 << 10

// DecodeHead reads one tree head as JSON, strictly: unknown fields,
// duplicated keys, trailing data and an oversized input are refused, and a
// head must have a size of at least 1 (the empty log has nothing to sign).
func DecodeHead(b []byte) (TreeHead, error) {
	var h TreeHead
	if len(b) > maxHeadFile {
		return h, fmt.Errorf("%w: a tree head over %d bytes", ErrMalformed, maxHeadFile)
	}
	if err := decodeStrict(b, &h); err != nil {
		return TreeHead{}, fmt.Errorf("%w: tree head: %v", ErrMalformed, err)
	}
	if h.Size == 0 {
		return TreeHead{}, fmt.Errorf("%w: tree head of size 0", ErrMalformed)
	}
	if len(h.Sig) != 0 && len(h.Sig) != ed25519.SignatureSize {
		return TreeHead{}, fmt.Errorf("%w: tree head signature of %d bytes", ErrMalformed, len(h.Sig))
	}
	return h, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields, duplicated object keys and trailing data.
func decodeStrict(b []byte, v any) error {
	if err := noDuplicateKeys(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}

// noDuplicateKeys walks a JSON document and refuses any object with the
// same key twice (encoding/json would let the last one win silently).
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				ks, _ := k.(string)
				if seen[ks] {
					return fmt.Errorf("duplicate key %q", ks)
				}
				seen[ks] = true
				if err := walk(); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return walk()
}

// ReadHeadFile reads a head file; (nil, nil) if there is none. pub, if not
// nil, must have signed it.
func ReadHeadFile(path string, pub ed25519.PublicKey) (*TreeHead, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: head file: %w", err)
	}
	h, err := DecodeHead(b)
	if err != nil {
		return nil, fmt.Errorf("audit: head file %s: %w", path, err)
	}
	if pub != nil {
		if err := h.VerifySignature(pub); err != nil {
			return nil, fmt.Errorf("audit: head file %s: %w", path, err)
		}
	}
	return &h, nil
}

// SaveHead writes the current tree head to the head file (atomically: a
// temporary file renamed over it), if the log is not empty. The node calls
// it at every witnessing round; Close calls it too.
func (l *Log) SaveHead() error {
	h := l.Head()
	if h.Size == 0 {
		return nil
	}
	return writeHeadFile(l.cfg.HeadPath, h, l.cfg.NoSync)
}

func writeHeadFile(path string, h TreeHead, noSync bool) error {
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("audit: head file: %w", err)
	}
	if err := writeFileAtomic(path, append(b, '\n'), !noSync); err != nil {
		return fmt.Errorf("audit: head file: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with b: a temporary file beside it, synced
// when sync is set, renamed over it.
func writeFileAtomic(path string, b []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

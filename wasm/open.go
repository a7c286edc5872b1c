package wasm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/sealed"
)

// Per-entry failures of [Runtime.OpenEntries], matched with errors.Is. They
// are package wasm/sealed's sentinels, which locator maps to its own.
var (
	ErrEntryMalformed  = sealed.ErrMalformed
	ErrSealBroken      = sealed.ErrSealBroken
	ErrUnknownHolder   = sealed.ErrUnknownHolder
	ErrHolderSignature = sealed.ErrHolderSignature
)

// Member is a federation member as a reader needs it to check holder
// signatures: its node id and enrolled Ed25519 public key.
type Member struct {
	NodeID    string
	PublicKey ed25519.PublicKey
}

// Opened is the outcome of opening one entry. Err is nil when the sealed
// part opened under the seal key and the holder node's signature verified
// against the members; otherwise it is one of ErrEntryMalformed,
// ErrSealBroken, ErrUnknownHolder or ErrHolderSignature and the other fields
// are zero. A reader drops (and counts) such an entry, never shows it.
type Opened struct {
	NodeID       string
	Category     string
	RegisteredAt time.Time
	// Withdrawn is true when the entry is a tombstone.
	Withdrawn bool
	// Broker is set, and NodeID and Category are empty, when the entry is
	// shielded: it names the broker that speaks for the holder, and Inner
	// is the holder's identity sealed to the broker (what a contact
	// request through the broker carries to it).
	Broker string
	Inner  []byte
	Err    error
}

// OpenEntries opens canonical locator entry encodings under one seal key
// inside the module, checking each holder signature against members (the
// same code a browser runs; package wasm/sealed natively). It does not check
// the entries' own signatures: open only entries a store accepted. Results
// are in the order of entries; at most 4096 entries. Errors are for bad
// calls (a malformed member, too many entries), closed runtimes and
// cancellation.
func (r *Runtime) OpenEntries(ctx context.Context, seal [32]byte, entries [][]byte, members []Member) ([]Opened, error) {
	if len(entries) > abi.MaxEntries {
		return nil, ErrBatchSize
	}
	size := 0
	for _, e := range entries {
		size += len(e)
	}
	if size > abi.MaxMessage/2 {
		return nil, ErrInputTooLarge
	}
	for i, m := range members {
		if m.NodeID == "" || len(m.NodeID) > sealed.MaxNodeIDLen || len(m.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("wasm: open entries: member %d: node id of 1..%d bytes and a %d-byte public key expected", i, sealed.MaxNodeIDLen, ed25519.PublicKeySize)
		}
	}
	encode := func(dst []byte) []byte {
		ms := make([][]byte, 0, 2*len(members))
		for _, m := range members {
			ms = append(ms, []byte(m.NodeID), m.PublicKey)
		}
		e := abi.Encoder{Buf: dst}
		e.Begin(2 + len(entries))
		e.Bytes(seal[:])
		e.Bytes(abi.AppendList(nil, ms...))
		for _, x := range entries {
			e.Bytes(x)
		}
		return e.Buf
	}
	out := make([]Opened, len(entries))
	decode := func(view []byte) error { return decodeOpenEntries(view, out) }
	if err := r.call(ctx, abi.OpOpenEntries, "open entries", encode, decode); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeOpenEntries decodes an OpOpenEntries response into out.
func decodeOpenEntries(view []byte, out []Opened) error {
	it := abi.NewIter(view)
	if it.Len() != 5*len(out) {
		return fmt.Errorf("%w: open entries returned %d items for %d entries", ErrABI, it.Len(), len(out))
	}
	for i := range out {
		status, id, cat, reg, flags := it.Next(), it.Next(), it.Next(), it.Next(), it.Next()
		if len(status) != 1 {
			return fmt.Errorf("%w: open entries response malformed", ErrABI)
		}
		if status[0] != abi.EntryOK {
			err := sealed.Reason(status[0]).Err()
			if err == nil {
				return fmt.Errorf("%w: open entries: unknown entry status %d", ErrABI, status[0])
			}
			out[i] = Opened{Err: err}
			continue
		}
		if len(reg) != 8 || len(id) == 0 {
			return fmt.Errorf("%w: open entries response malformed", ErrABI)
		}
		out[i] = Opened{
			RegisteredAt: time.Unix(int64(binary.BigEndian.Uint64(reg)), 0).UTC(),
			Withdrawn:    bytes.HasPrefix(flags, []byte("1")),
		}
		if bytes.HasSuffix(flags, []byte("s")) {
			out[i].Broker, out[i].Inner = string(id), bytes.Clone(cat)
		} else {
			out[i].NodeID, out[i].Category = string(id), string(cat)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: open entries response: %w", ErrABI, err)
	}
	return nil
}

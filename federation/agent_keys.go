package federation

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
)

// PeerKeyRecordsPath is where a signed key record is POSTed (body: its
// canonical encoding). A node adopts it if it verifies and is newer than
// the record in force for its (purpose, epoch), and forwards it.
const PeerKeyRecordsPath = "/federation/v1/key-records"

// KeyRecords returns the verified key records in force, one per (purpose,
// epoch), sorted by purpose then epoch. The records are shared: do not
// modify them.
func (a *Agent) KeyRecords() []*KeyRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := make([]*KeyRecord, 0, len(a.mu.keyRecords))
	for _, r := range a.mu.keyRecords {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, compareKeyRecords)
	return rs
}

// KeyRecord returns the record in force for (purpose, epoch).
func (a *Agent) KeyRecord(purpose string, epoch uint32) (*KeyRecord, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.mu.keyRecords[keyRecordID{purpose, epoch}]
	return r, ok
}

// SetKeyRecord adopts r if the authority signed it, it is a consistent key
// (KeyRecord.Verify) and its Serial is above the record in force for its
// (purpose, epoch) (else ErrKeyRecordStale). It persists the records,
// reports a KeyRecordAdopted event, and pushes r to every alive member,
// which adopt and forward it in turn; a member that joins later receives
// every record in force.
func (a *Agent) SetKeyRecord(r *KeyRecord) error {
	if err := r.Verify(a.cfg.AuthorityKey); err != nil {
		return err
	}
	a.mu.Lock()
	if cur := a.mu.keyRecords[r.id()]; cur != nil && r.Serial <= cur.Serial {
		a.mu.Unlock()
		return ErrKeyRecordStale
	}
	a.adoptKeyRecordLocked(r)
	var targets []string
	for id, m := range a.mu.members {
		if m.alive && id != a.self.Descriptor.NodeID {
			targets = append(targets, id)
		}
	}
	all := a.keyRecordsLocked()
	a.mu.Unlock()
	a.log.Info("key record adopted", "purpose", r.Purpose, "epoch", r.Epoch, "serial", r.Serial, "t", r.T, "n", r.N())
	if a.cfg.DataDir != "" {
		// Owner-only like every file of a node's data directory, though
		// nothing in a record is secret.
		if err := writeKeyRecords(filepath.Join(a.cfg.DataDir, KeyRecordsFile), all, true); err != nil {
			a.log.Warn("persisting key records failed", "err", err)
		}
	}
	a.emit(MemberEvent{Type: KeyRecordAdopted, KeyRecord: r})
	if a.started.Load() {
		enc := r.Encode()
		for _, id := range targets {
			if s := a.senderFor(id); s != nil && !s.enqueue(outItem{path: PeerKeyRecordsPath, body: enc}) {
				a.stats.sendDropped.Add(1)
			}
		}
	}
	return nil
}

// adoptKeyRecordLocked puts r in force if it is newer than the record of
// its (purpose, epoch); r must be verified. REQUIRES: a.mu (or no other
// goroutine yet).
func (a *Agent) adoptKeyRecordLocked(r *KeyRecord) {
	if cur := a.mu.keyRecords[r.id()]; cur == nil || r.Serial > cur.Serial {
		a.mu.keyRecords[r.id()] = r
	}
}

// keyRecordsLocked lists the records in force, sorted. REQUIRES: a.mu.
func (a *Agent) keyRecordsLocked() []*KeyRecord {
	rs := make([]*KeyRecord, 0, len(a.mu.keyRecords))
	for _, r := range a.mu.keyRecords {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, compareKeyRecords)
	return rs
}

// encodedKeyRecordsLocked encodes the records in force, for a member that
// joined. REQUIRES: a.mu.
func (a *Agent) encodedKeyRecordsLocked() [][]byte {
	var out [][]byte
	for _, r := range a.keyRecordsLocked() {
		out = append(out, r.Encode())
	}
	return out
}

// handleKeyRecord accepts a key record from a peer.
func (a *Agent) handleKeyRecord(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, int64(MaxKeyRecordSize))); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "key record too large")
		return
	}
	kr, err := DecodeSignedKeyRecord(buf.Bytes())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_key_record", err.Error())
		return
	}
	switch err := a.SetKeyRecord(kr); {
	case err == nil, errors.Is(err, ErrKeyRecordStale):
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusBadRequest, "bad_key_record", err.Error())
	}
}

func writeKeyRecords(path string, rs []*KeyRecord, secret bool) error {
	if len(rs) > maxKeyRecords {
		return fmt.Errorf("federation: %d key records, max %d", len(rs), maxKeyRecords)
	}
	blocks := make([][]byte, len(rs))
	for i, r := range rs {
		blocks[i] = r.Encode()
	}
	return writePEMBlocks(path, secret, pemKeyRecord, blocks)
}

// AdoptKeyRecords adopts the signed key records of a records file's
// contents (an operator uploading what the authority signed): each is
// verified under the federation's authority and put in force and spread
// like SetKeyRecord. It returns how many were adopted; a record not newer
// than the one in force is skipped, not an error.
func (a *Agent) AdoptKeyRecords(name string, data []byte) (int, error) {
	rs, err := ParseKeyRecords(name, data, a.cfg.AuthorityKey)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs {
		switch err := a.SetKeyRecord(r); {
		case err == nil:
			n++
		case errors.Is(err, ErrKeyRecordStale):
		default:
			return n, err
		}
	}
	return n, nil
}

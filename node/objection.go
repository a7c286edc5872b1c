package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// Objections cover the person.
//
// A person who objects at this agency objects as a person: every record of
// theirs the agency holds, now or later, under any local id, is withdrawn
// from the federation and never published while the objection stands. The
// node keeps the objection as a marker in its records database: an
// HMAC-SHA256 of the canonical number under the objection key, a
// node-local secret (ObjectionKeyFile in the data directory, 0600, made at
// first start). The marker outlives the person's records (the retention
// sweep leaves it), and neither it nor the number is ever logged, audited
// or answered. See node/internal/records (objections.go) for the store's
// side and docs/RATIONALE.md for why a keyed hash.
//
// A record written for a person whose objection stands (POST /v1/records,
// an import's row) is stored, not published: the agency keeps its own case
// record, and the answer says "withheld": "objected" (an import lists the
// row among withheldRows). The write is audited as record-withheld.
// Withdrawing the objection publishes every record of the person the
// agency still holds.

// ObjectionKeyFile is the objection key's file in the data directory: 32
// random bytes, 0600, made at first start. It must be backed up with
// records.db: a records database refuses any other key.
const ObjectionKeyFile = "objection.key"

// ErrUnsafePermissions means a secret file of the node's may be read or
// changed by users other than the node's: the node refuses to start, as
// ssh refuses a private key others can read, naming the file and the fix.
var ErrUnsafePermissions = errors.New("unsafe permissions")

// objectionKey loads the objection key from dir, or makes it (32 random
// bytes, written 0600 and synced before it is used) when there is none. It
// refuses a key file group or others may read or write.
func objectionKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, ObjectionKeyFile)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return newObjectionKey(dir, path)
	case err != nil:
		return nil, fmt.Errorf("node: objection key: %w", err)
	}
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: objection key %s is accessible by group or others (mode %04o); run: chmod 600 %s",
			ErrUnsafePermissions, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node: objection key: %w", err)
	}
	if len(b) != records.MarkerKeySize {
		return nil, fmt.Errorf("node: objection key %s: %d bytes, want %d; restore it from the backup made with records.db", path, len(b), records.MarkerKeySize)
	}
	return b, nil
}

// newObjectionKey writes a new key to path through a temporary file, so
// that a crash leaves either no key or a whole one.
func newObjectionKey(dir, path string) ([]byte, error) {
	key := make([]byte, records.MarkerKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("node: objection key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ObjectionKeyFile+".*")
	if err != nil {
		return nil, fmt.Errorf("node: write objection key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("node: write objection key: %w", err)
	}
	return key, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// objectionRequest names the person by number, in the body only (never in
// a URL, where proxies and logs keep it).
type objectionRequest struct {
	NHSNumber string `json:"nhsNumber"`
}

// objectionAnswer is the answer to an objection or its withdrawal. Records
// counts the agency's records of the person it covers; Published says
// whether the federation has the change (their entries withdrawn, or
// published again), false when Queued changes wait in the outbox (the
// issuer cannot be reached). Already: the objection stood already. It
// never holds the number or the marker.
type objectionAnswer struct {
	Records   int  `json:"records"`
	Published bool `json:"published"`
	Queued    int  `json:"queued"`
	Already   bool `json:"already,omitempty"`
}

// canonical validates a number typed by an operator.
func (n *Node) canonical(r *http.Request, nhs string) (string, error) {
	canon, err := n.tok.Normalize(r.Context(), nhs)
	if err != nil {
		return "", errorf(http.StatusBadRequest, httpx.CodeInvalidNHSNumber, "%s", safeReason(err))
	}
	return canon, nil
}

// handleObjectPerson records a person's objection (POST /v1/objections):
// the marker and the objection of every record of the person held are
// committed together, with the withdrawals of their entries, which are
// made before the answer: 201 (a new objection), 200 (it stood already),
// or 202 when a withdrawal is queued.
func (n *Node) handleObjectPerson(w http.ResponseWriter, r *http.Request, req *objectionRequest) error {
	nhs, err := n.canonical(r, req.NHSNumber)
	if err != nil {
		return err
	}
	ids, _, err := n.records.Person(nhs)
	if err != nil {
		return err
	}
	return n.object(w, r, "", ids, func(note records.Note) (records.Objection, error) {
		return n.records.ObjectPerson(nhs, note)
	})
}

// handleObject records the objection of the person of one record (POST
// /v1/records/{localId}/objection): as handleObjectPerson, with that
// record's number, answered as a record change: 204, or 202 when a
// withdrawal is queued.
func (n *Node) handleObject(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("localId")
	ids, err := n.records.PersonOf(id)
	if errors.Is(err, records.ErrNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no record with this localId")
	} else if err != nil {
		return err
	}
	return n.object(w, r, id, ids, func(note records.Note) (records.Objection, error) {
		return n.records.Object(id, note)
	})
}

// object is what both ways to object share: it claims the person's local
// ids (read before; one stored meanwhile is objected all the same, and its
// entries' versions order the withdrawal after it), applies change,
// withdraws what it enqueued, audits and answers (as a record change when
// localID is set).
func (n *Node) object(w http.ResponseWriter, r *http.Request, localID string, ids []string, change func(records.Note) (records.Objection, error)) error {
	p := principalFrom(r.Context())
	action := string(audit.ActionObjection)
	release, err := n.pub.claim(r.Context(), ids)
	if err != nil {
		return err
	}
	defer release()
	o, err := change(records.Note{At: n.opt.Now(), Audit: action, Actor: p.Name})
	if errors.Is(err, records.ErrNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no record with this localId")
	} else if err != nil {
		return err
	}
	subjects, done := n.flush(r.Context(), o.Seqs)
	ans := objectionAnswer{Records: len(o.IDs), Published: done, Already: o.Already}
	outcome, status := "ok", http.StatusCreated
	if o.Already {
		status = http.StatusOK
	}
	if !done {
		ans.Queued, outcome, status = len(o.Seqs), "queued", http.StatusAccepted
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, LocalID: localID, Count: len(o.IDs), Outcome: outcome, Subject: flatSubjects(o.Seqs, subjects)})
	switch {
	case localID == "":
		writeJSON(w, status, ans)
	case ans.Queued > 0:
		writeJSON(w, http.StatusAccepted, recordAnswer{LocalID: localID, Queued: ans.Queued})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// handleWithdrawObjection ends a person's objection (POST
// /v1/objections/withdraw): the marker's deletion and the publication of
// every record of the person still held are committed together, and the
// publications made before the answer: 200, or 202 when they are queued;
// 404 when no objection stands.
func (n *Node) handleWithdrawObjection(w http.ResponseWriter, r *http.Request, req *objectionRequest) error {
	nhs, err := n.canonical(r, req.NHSNumber)
	if err != nil {
		return err
	}
	p := principalFrom(r.Context())
	action := string(audit.ActionObjectionWithdrawn)
	ids, _, err := n.records.Person(nhs)
	if err != nil {
		return err
	}
	release, err := n.pub.claim(r.Context(), ids)
	if err != nil {
		return err
	}
	defer release()
	o, err := n.records.WithdrawObjection(nhs, n.opt.Now(), records.Note{At: n.opt.Now(), Audit: action, Actor: p.Name})
	if errors.Is(err, records.ErrNoObjection) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no objection stands for this person")
	} else if err != nil {
		return err
	}
	subjects, done := n.flush(r.Context(), o.Seqs)
	ans := objectionAnswer{Records: len(o.IDs), Published: done}
	outcome, status := "ok", http.StatusOK
	if !done {
		ans.Queued, outcome, status = len(o.Seqs), "queued", http.StatusAccepted
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, Count: len(o.IDs), Outcome: outcome, Subject: flatSubjects(o.Seqs, subjects)})
	writeJSON(w, status, ans)
	return nil
}

// flatSubjects is every lookup key of a flush's items, in the items'
// order, for one audit line.
func flatSubjects(seqs []uint64, m map[uint64][][16]byte) [][16]byte {
	var out [][16]byte
	for _, seq := range seqs {
		out = append(out, m[seq]...)
	}
	return out
}

package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
)

type createRecordRequest struct {
	LocalID     string `json:"localId"`
	NHSNumber   string `json:"nhsNumber"`
	Category    string `json:"category,omitempty"`
	RetainUntil string `json:"retainUntil,omitempty"`
}

// parseRetain accepts RFC 3339 or a date (end of that day, UTC).
func parseRetain(s string, now time.Time, def time.Duration) (time.Time, error) {
	if s == "" {
		return now.Add(def).UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24*time.Hour - time.Second).UTC(), nil
	}
	return time.Time{}, errors.New("retainUntil must be RFC 3339 or YYYY-MM-DD")
}

// newRecord validates a request into a record, without touching any store.
func (n *Node) newRecord(ctx context.Context, req createRecordRequest) (records.Record, *apiError) {
	if req.LocalID == "" {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidRecord, "localId is required")
	}
	canon, err := n.tok.Normalize(ctx, req.NHSNumber)
	if err != nil {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidNHSNumber, "%s", safeReason(err))
	}
	now := n.opt.Now()
	retain, err := parseRetain(req.RetainUntil, now, n.cfg.RetentionDefault.D())
	if err != nil {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidRecord, "%s", err.Error())
	}
	if !retain.After(now) {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidRecord, "retainUntil is in the past")
	}
	if retain.After(now.Add(n.cfg.MaxRetention.D())) {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidRecord, "retainUntil is beyond the federation's maximum retention")
	}
	cat := req.Category
	if cat == "" {
		cat = n.cfg.Category
	}
	r := records.Record{LocalID: req.LocalID, NHSNumber: canon, Category: cat, RetainUntil: retain, Created: now.UTC().Truncate(time.Second),
		RetainDefaulted: req.RetainUntil == ""}
	if err := r.Validate(); err != nil {
		return records.Record{}, errorf(http.StatusBadRequest, httpx.CodeInvalidRecord, "%s", strings.TrimPrefix(err.Error(), "records: invalid record: "))
	}
	return r, nil
}

// safeReason returns a validation reason fit to show. The tokenizer's
// reasons never contain the input; cap the length all the same.
func safeReason(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// recordAnswer is the answer to a record write. Published says whether
// the federation has the change: false when it is queued in the node's
// outbox (the issuer cannot be reached; the node publishes it when it can,
// and the answer is 202). Queued counts the record's changes waiting.
// Withheld, when set, says why the record is stored but not published:
// "objected", the person's objection stands (objection.go).
type recordAnswer struct {
	LocalID     string     `json:"localId"`
	Category    string     `json:"category,omitempty"`
	RetainUntil *time.Time `json:"retainUntil,omitempty"`
	Published   bool       `json:"published"`
	Queued      int        `json:"queued"`
	Withheld    httpx.Code `json:"withheld,omitempty"`
}

// handleCreateRecord stores the record and its outbox item in one
// transaction, then publishes it before answering: 201 (published), 200
// (an identical record existed), or 202 when the issuer cannot be reached
// (stored, publication queued). A record of a person whose objection
// stands is stored and not published: 201 (or 200), "published": false,
// "withheld": "objected", audited as record-withheld.
func (n *Node) handleCreateRecord(w http.ResponseWriter, r *http.Request, req *createRecordRequest) error {
	rec, aerr := n.newRecord(r.Context(), *req)
	if aerr != nil {
		return aerr
	}
	p := principalFrom(r.Context())
	release, err := n.pub.claim(r.Context(), []string{rec.LocalID})
	if err != nil {
		return err
	}
	defer release()
	res, err := n.records.Put(rec, records.Note{At: n.opt.Now(), Audit: "record-create", Actor: p.Name})
	switch {
	case errors.Is(err, records.ErrExists):
		return errorf(http.StatusConflict, httpx.CodeExists, "a different record with this localId exists; delete it first")
	case err != nil:
		return err
	}
	stored := res.Record
	ans := recordAnswer{LocalID: stored.LocalID, Category: stored.Category, RetainUntil: &stored.RetainUntil}
	status := http.StatusOK
	var subject [][16]byte
	switch {
	case stored.Objected:
		// Stored, not published: nothing to flush, no entry to name.
		if res.Created {
			status = http.StatusCreated
		}
	case res.Created:
		var subjects map[uint64][][16]byte
		subjects, ans.Published = n.flush(r.Context(), []uint64{res.Seq})
		subject = subjects[res.Seq]
		status = http.StatusCreated
	default:
		// A retry of a record held already: published if its entries are.
		pub, ok, err := n.records.PublishedState(stored.LocalID)
		if err != nil {
			return err
		}
		ans.Published = ok && pub.Version == stored.Version
		for _, k := range pub.Keys {
			subject = append(subject, k.Lookup)
		}
	}
	outcome, action := "ok", "record-create"
	switch {
	case stored.Objected:
		ans.Withheld, action = httpx.CodeObjected, string(audit.ActionRecordWithheld)
	case !ans.Published:
		ans.Queued, outcome = 1, "queued"
		if res.Created {
			status = http.StatusAccepted
		}
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, LocalID: stored.LocalID, Count: 1, Outcome: outcome, Subject: subject})
	writeJSON(w, status, ans)
	return nil
}

func (n *Node) audit(ctx context.Context, e AuditEvent) {
	if err := n.opt.Audit.Record(ctx, e); err != nil {
		n.log.Error("audit append failed", "action", e.Action, "err", err)
	}
}

// handleDeleteRecord deletes a record and withdraws its entries (unless an
// objection withdrew them already). The person's objection, if one
// stands, stays (objection.go).
func (n *Node) handleDeleteRecord(w http.ResponseWriter, r *http.Request) error {
	return n.endRecord(w, r, "record-delete", func(id string, note records.Note) (uint64, error) {
		_, seq, err := n.records.Delete(id, note)
		return seq, err
	})
}

// endRecord is a deletion: change applies the store's change with the
// outbox item that withdraws the entries (seq 0: none to withdraw), in one
// transaction; the withdrawal is then made before the answer: 204, or 202
// when it is queued (the issuer cannot be reached and the entries' keys
// are not known). The action is audited.
func (n *Node) endRecord(w http.ResponseWriter, r *http.Request, action string, change func(id string, note records.Note) (uint64, error)) error {
	id := r.PathValue("localId")
	p := principalFrom(r.Context())
	release, err := n.pub.claim(r.Context(), []string{id})
	if err != nil {
		return err
	}
	defer release()
	seq, err := change(id, records.Note{At: n.opt.Now(), Audit: action, Actor: p.Name})
	if errors.Is(err, records.ErrNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no record with this localId")
	} else if err != nil {
		return err
	}
	var seqs []uint64
	if seq != 0 {
		seqs = []uint64{seq}
	}
	subjects, withdrawn := n.flush(r.Context(), seqs)
	if !withdrawn {
		n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, LocalID: id, Count: 1, Outcome: "queued"})
		writeJSON(w, http.StatusAccepted, recordAnswer{LocalID: id, Queued: 1})
		return nil
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, LocalID: id, Count: 1, Outcome: "ok", Subject: subjects[seq]})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

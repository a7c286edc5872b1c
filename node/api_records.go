package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

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

func (n *Node) handleCreateRecord(w http.ResponseWriter, r *http.Request, req *createRecordRequest) error {
	rec, aerr := n.newRecord(r.Context(), *req)
	if aerr != nil {
		return aerr
	}
	// Tokenise before writing, so that an unreachable issuer writes nothing.
	keys, err := n.tokenise(r.Context(), []string{rec.NHSNumber})
	if err != nil {
		return err
	}
	stored, created, err := n.records.Put(rec)
	switch {
	case errors.Is(err, records.ErrExists):
		return errorf(http.StatusConflict, httpx.CodeExists, "a different record with this localId exists; delete it first")
	case errors.Is(err, records.ErrObjected):
		return errorf(http.StatusConflict, httpx.CodeObjected, "the person has objected; this record is not published again")
	case err != nil:
		return err
	}
	p := principalFrom(r.Context())
	if created {
		if err := n.publishKeys(r.Context(), []records.Record{stored}, keys); err != nil {
			// Committed locally; Republish at start retries publication.
			n.log.Error("publish after create failed", "localId", stored.LocalID, "err", err)
		}
	}
	n.audit(r.Context(), AuditEvent{Action: "record-create", Actor: p.Name, LocalID: stored.LocalID, Count: 1, Outcome: "ok", Subject: lookups(keys, 0)})
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]any{"localId": stored.LocalID, "category": stored.Category, "retainUntil": stored.RetainUntil})
	return nil
}

func lookups(keys map[string][]Keys, i int) [][16]byte {
	var out [][16]byte
	for _, ks := range keys {
		out = append(out, ks[i].Lookup)
	}
	return out
}

func (n *Node) audit(ctx context.Context, e AuditEvent) {
	if err := n.opt.Audit.Record(ctx, e); err != nil {
		n.log.Error("audit append failed", "action", e.Action, "err", err)
	}
}

// handleDeleteRecord deletes a record and withdraws its entries (unless an
// objection withdrew them already).
func (n *Node) handleDeleteRecord(w http.ResponseWriter, r *http.Request) error {
	return n.endRecord(w, r, "record-delete", func(id string) (records.Record, bool, error) {
		rec, err := n.records.Delete(id)
		return rec, !rec.Objected, err
	})
}

// handleObject records a person's objection: the record stays, marked so
// that it is never published again, and its entries are withdrawn (once).
func (n *Node) handleObject(w http.ResponseWriter, r *http.Request) error {
	return n.endRecord(w, r, "objection", func(id string) (records.Record, bool, error) {
		rec, already, err := n.records.Object(id)
		return rec, !already, err
	})
}

// endRecord is what a deletion and an objection share: the record of the
// path's localId is tokenised first (so that an unreachable issuer writes
// nothing), then change applies the store's change and says whether the
// entries are still to be withdrawn; the action is audited.
func (n *Node) endRecord(w http.ResponseWriter, r *http.Request, action string, change func(id string) (records.Record, bool, error)) error {
	id := r.PathValue("localId")
	rec, err := n.records.Get(id)
	if errors.Is(err, records.ErrNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no record with this localId")
	} else if err != nil {
		return err
	}
	keys, err := n.tokenise(r.Context(), []string{rec.NHSNumber})
	if err != nil {
		return err
	}
	rec, withdraw, err := change(id)
	if errors.Is(err, records.ErrNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeNotFound, "no record with this localId")
	} else if err != nil {
		return err
	}
	if withdraw {
		if err := n.withdraw(r.Context(), rec, keys); err != nil {
			n.log.Error("withdraw failed", "action", action, "localId", id, "err", err)
		}
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: principalFrom(r.Context()).Name, LocalID: id, Count: 1, Outcome: "ok", Subject: lookups(keys, 0)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package node

import (
	"errors"
	"net/http"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

type subjectAccessRequest struct {
	NHSNumber string `json:"nhsNumber"`
}

// handleSubjectAccess answers "what did this node do concerning this
// person?": the number is tokenised for each of the node's purposes under
// every key in force (through the issuers, themselves audited; during a
// rotation's overlap, both epochs), the lookup keys become
// subject references, and the log returns every event naming them. The
// answer names no NHS number; the query is audited too.
func (n *Node) handleSubjectAccess(w http.ResponseWriter, r *http.Request, req *subjectAccessRequest) error {
	canon, err := n.tok.Normalize(r.Context(), req.NHSNumber)
	if err != nil {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidNHSNumber, "%s", safeReason(err))
	}
	lk, err := n.subjectLookups(r.Context(), canon)
	if err != nil {
		return err
	}
	events, err := n.opt.Audit.Subject(lk)
	if errors.Is(err, ErrNoAuditQuery) {
		return errorf(http.StatusNotImplemented, httpx.CodeNoAuditLog, "this node has no queryable audit log")
	}
	if err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "subject-access", Actor: principalFrom(r.Context()).Name, Count: 1, Outcome: "ok", Subject: lk})
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
	return nil
}

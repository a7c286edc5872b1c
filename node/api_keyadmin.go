package node

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/port"
)

// The operator's token-key administration (port.KeyAdmin): start a DKG
// among chosen issuers, follow it, fetch the public result for the
// authority to sign offline, and upload the signed key record, which then
// spreads to every member. `signpost federation dkg …` and
// `signpost federation key-records add` are the command-line side.

type dkgStartRequest struct {
	Purpose string   `json:"purpose"`
	Epoch   uint32   `json:"epoch"`
	T       int      `json:"t"`
	Issuers []string `json:"issuers"`
}

type dkgStartResponse struct {
	Session string `json:"session"`
}

type dkgSessionsResponse struct {
	Sessions any `json:"sessions"`
}

type dkgResultResponse struct {
	Session string `json:"session"`
	// Result is the PEM file `signpost federation sign-key` signs.
	Result string `json:"result"`
}

type keyRecordsRequest struct {
	// Records is a signed key-records file (PEM), as sign-key writes it.
	Records string `json:"records"`
}

type keyRecordsResponse struct {
	Adopted int `json:"adopted"`
}

// maxIssuers bounds a DKG's issuer list in a request (the DKG's own bound
// is checked by the federation).
const maxIssuers = 64

var sessionRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (n *Node) keyAdmin() (port.KeyAdmin, error) {
	if n.opt.KeyAdmin == nil {
		return nil, errorf(http.StatusServiceUnavailable, httpx.CodeNoFederation, "this node has no federation to make keys with")
	}
	return n.opt.KeyAdmin, nil
}

// keyAdminError maps a refused request to 400 with the reason, and lets
// anything else be a 500.
func keyAdminError(err error) error {
	if errors.Is(err, port.ErrKeyAdmin) {
		return errorf(http.StatusBadRequest, httpx.CodeKeyAdmin, "%s", err.Error())
	}
	return err
}

func (n *Node) handleDKGStart(w http.ResponseWriter, r *http.Request, req *dkgStartRequest) error {
	return n.startKeySession(w, r, req, "dkg-start", port.KeyAdmin.StartDKG)
}

// handleReshareStart starts moving a key in force to a new issuer set.
func (n *Node) handleReshareStart(w http.ResponseWriter, r *http.Request, req *dkgStartRequest) error {
	return n.startKeySession(w, r, req, "reshare-start", port.KeyAdmin.StartReshare)
}

// startKeySession is a DKG's or a reshare's start: the request checked,
// the session started, the attempt audited as action either way.
func (n *Node) startKeySession(w http.ResponseWriter, r *http.Request, req *dkgStartRequest, action string,
	start func(port.KeyAdmin, context.Context, string, uint32, int, []string) (string, error)) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	if len(req.Issuers) == 0 || len(req.Issuers) > maxIssuers || req.T < 1 || req.T > len(req.Issuers) || req.Epoch == 0 {
		return errorf(http.StatusBadRequest, httpx.CodeKeyAdmin, "name 1 to %d issuers, a threshold t from 1 to their number, and an epoch above 0", maxIssuers)
	}
	id, err := start(ka, r.Context(), req.Purpose, req.Epoch, req.T, req.Issuers)
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeDenied
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: principalFrom(r.Context()).Name, Purpose: req.Purpose, Count: len(req.Issuers), Outcome: outcome})
	if err != nil {
		return keyAdminError(err)
	}
	writeJSON(w, http.StatusAccepted, dkgStartResponse{Session: id})
	return nil
}

// handleReshareApprove lets this node deal its share in a peer's reshare.
func (n *Node) handleReshareApprove(w http.ResponseWriter, r *http.Request) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	id := r.PathValue("session")
	if !sessionRe.MatchString(id) {
		return errorf(http.StatusBadRequest, httpx.CodeKeyAdmin, "a session id is 64 lowercase hex digits")
	}
	if err := ka.ApproveReshare(id); err != nil {
		return keyAdminError(err)
	}
	n.audit(r.Context(), AuditEvent{Action: "reshare-approve", Actor: principalFrom(r.Context()).Name, Outcome: outcomeOK})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type eraseRequest struct {
	Purpose string `json:"purpose"`
	Epoch   uint32 `json:"epoch"`
}

type eraseResponse struct {
	Erased int `json:"erased"`
}

// handleEraseOldShares erases this node's superseded shares of a key.
func (n *Node) handleEraseOldShares(w http.ResponseWriter, r *http.Request, req *eraseRequest) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	if req.Epoch == 0 {
		return errorf(http.StatusBadRequest, httpx.CodeKeyAdmin, "name the key's purpose and epoch")
	}
	erased, err := ka.EraseOldShares(req.Purpose, req.Epoch)
	if err != nil {
		return keyAdminError(err)
	}
	n.audit(r.Context(), AuditEvent{Action: "shares-erased", Actor: principalFrom(r.Context()).Name, Purpose: req.Purpose, Count: erased, Outcome: outcomeOK})
	writeJSON(w, http.StatusOK, eraseResponse{Erased: erased})
	return nil
}

func (n *Node) handleDKGSessions(w http.ResponseWriter, _ *http.Request) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dkgSessionsResponse{Sessions: ka.DKGSessions()})
	return nil
}

func (n *Node) handleDKGResult(w http.ResponseWriter, r *http.Request) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	id := r.PathValue("session")
	if !sessionRe.MatchString(id) {
		return errorf(http.StatusBadRequest, httpx.CodeKeyAdmin, "a session id is 64 lowercase hex digits")
	}
	res, err := ka.DKGResult(id)
	if err != nil {
		return keyAdminError(err)
	}
	writeJSON(w, http.StatusOK, dkgResultResponse{Session: id, Result: string(res)})
	return nil
}

func (n *Node) handleKeyRecords(w http.ResponseWriter, r *http.Request, req *keyRecordsRequest) error {
	ka, err := n.keyAdmin()
	if err != nil {
		return err
	}
	adopted, err := ka.AdoptKeyRecords([]byte(req.Records))
	outcome := outcomeOK
	if err != nil {
		outcome = outcomeDenied
	}
	n.audit(r.Context(), AuditEvent{Action: "key-records", Actor: principalFrom(r.Context()).Name, Count: adopted, Outcome: outcome})
	if err != nil {
		return keyAdminError(err)
	}
	writeJSON(w, http.StatusOK, keyRecordsResponse{Adopted: adopted})
	return nil
}

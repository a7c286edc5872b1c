package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

type contactRequest struct {
	NodeID    string `json:"nodeId"`
	Purpose   string `json:"purpose"`
	LookupKey string `json:"lookupKey,omitempty"`
	NHSNumber string `json:"nhsNumber,omitempty"`
	Message   string `json:"message,omitempty"`
}

// peerContact is what travels to the holder: never the NHS number.
type peerContact struct {
	LookupKey string `json:"lookupKey"`
	Purpose   string `json:"purpose"`
	Requester string `json:"requester"`
	Message   string `json:"message,omitempty"`
}

// ContactAnswer is the holder's decision.
type ContactAnswer struct {
	Status  string `json:"status"` // accepted | pending
	Contact string `json:"contact,omitempty"`
	Agency  string `json:"agency,omitempty"`
}

// ReceivedContact is a request a holder received, shown to its own staff.
type ReceivedContact struct {
	At         time.Time `json:"at"`
	FromNode   string    `json:"fromNode"`
	FromAgency string    `json:"fromAgency"`
	Requester  string    `json:"requester"`
	Purpose    string    `json:"purpose"`
	LocalID    string    `json:"localId"`
	Message    string    `json:"message,omitempty"`
	Status     string    `json:"status"`
}

// contactLog keeps the most recent received requests in memory for the
// holder's staff (the durable record is the audit log).
type contactLog struct {
	mu   sync.Mutex
	max  int
	list []ReceivedContact
}

func newContactLog(max int) *contactLog { return &contactLog{max: max} }

func (c *contactLog) add(rc ReceivedContact) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, rc)
	if len(c.list) > c.max {
		c.list = c.list[len(c.list)-c.max:]
	}
}

func (c *contactLog) all() []ReceivedContact {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ReceivedContact, len(c.list))
	copy(out, c.list)
	return out
}

// MaxMessageLen bounds a contact request's free-text message.
const MaxMessageLen = 500

func (n *Node) handleContactRequest(w http.ResponseWriter, r *http.Request, req *contactRequest) error {
	if !n.purposeAllowed(req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	if req.NodeID == "" || req.NodeID == n.cfg.NodeID {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidHolder, "nodeId must name another agency's node")
	}
	if len(req.Message) > MaxMessageLen {
		return errorf(http.StatusBadRequest, httpx.CodeMessageTooLong, "message longer than %d bytes", MaxMessageLen)
	}
	var lookup [16]byte
	switch {
	case req.LookupKey != "" && req.NHSNumber == "":
		k, aerr := decodeLookupKey(req.LookupKey)
		if aerr != nil {
			return aerr
		}
		lookup = k
	case req.NHSNumber != "" && req.LookupKey == "":
		canon, err := n.tok.Normalize(r.Context(), req.NHSNumber)
		if err != nil {
			return errorf(http.StatusBadRequest, httpx.CodeInvalidNHSNumber, "%s", safeReason(err))
		}
		ks, err := n.tok.Keys(r.Context(), req.Purpose, []string{canon})
		if err != nil {
			return err
		}
		lookup = ks[0].Lookup
	default:
		return errorf(http.StatusBadRequest, httpx.CodeInvalidSubject, "send exactly one of lookupKey and nhsNumber")
	}
	if n.opt.Peers == nil {
		return errorf(http.StatusServiceUnavailable, httpx.CodeNoFederation, "this node is not connected to a federation")
	}
	p := principalFrom(r.Context())
	if len(n.opt.Peers.Purposes(req.NodeID)) == 0 {
		// No descriptor: not a member. Said before any call, so that a typo
		// is not reported as an outage (502) and nothing travels.
		n.audit(r.Context(), AuditEvent{Action: "contact-request-sent", Actor: p.Name, Purpose: req.Purpose, Count: 1, Outcome: "denied", Subject: [][16]byte{lookup}})
		return errorf(http.StatusNotFound, httpx.CodeUnknownNode, "nodeId names no member of the federation")
	}
	var ans ContactAnswer
	err := n.opt.Peers.Call(r.Context(), req.NodeID, PeerContactPath, peerContact{
		LookupKey: encodeKey(lookup), Purpose: req.Purpose, Requester: p.Name, Message: req.Message,
	}, &ans)
	outcome := "ok"
	var aerr *apiError
	if err != nil {
		var refused bool
		aerr, refused = holderError(err)
		outcome = "denied"
		if !refused {
			outcome = "error"
			n.log.Warn("contact request failed", "peer", req.NodeID, "err", err)
		}
	}
	n.audit(r.Context(), AuditEvent{Action: "contact-request-sent", Actor: p.Name, Purpose: req.Purpose, Peer: req.NodeID, Count: 1, Outcome: outcome, Subject: [][16]byte{lookup}})
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// holderError maps a failed contact request to the requester's answer, and
// says whether the holder refused (rather than failed). A holder that holds
// no current record under the key says so (404 no_record); its other
// refusals (4xx) pass through with their status and code — except 401,
// which means the holder did not accept this node, not that the caller's
// credentials are wrong (502). Only a holder that cannot be reached, times
// out or fails is a gateway error (502, or 504 on a timeout).
func holderError(err error) (ae *apiError, refused bool) {
	var pe *PeerError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &pe) && pe.Status == http.StatusNotFound && pe.Code == string(httpx.CodeNoRecord):
		return errorf(http.StatusNotFound, httpx.CodeNoRecord, "the holder's node holds no current record for this person under that purpose"), true
	case errors.As(err, &pe) && pe.Status == http.StatusUnauthorized:
		return errorf(http.StatusBadGateway, httpx.CodeHolderRefused, "the holder's node did not accept this node's credentials"), true
	case errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && pe.Status != http.StatusNotFound && knownCode(pe.Code):
		msg := pe.Message
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return errorf(pe.Status, httpx.Code(pe.Code), "the holder refused: %s", msg), true
	case errors.As(err, &pe):
		return errorf(http.StatusBadGateway, httpx.CodeHolderFailed, "the holder's node could not handle the request; try again later"), false
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout():
		return errorf(http.StatusGatewayTimeout, httpx.CodeHolderTimeout, "the holder's node did not answer in time; try again later"), false
	default:
		return errorf(http.StatusBadGateway, httpx.CodeHolderUnreachable, "the holder's node did not answer; try again later"), false
	}
}

func (n *Node) handlePeerContact(w http.ResponseWriter, r *http.Request, req *peerContact) error {
	peer := peerFrom(r.Context())
	if n.opt.Peers == nil || !containsStr(n.opt.Peers.Purposes(peer), req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	k, aerr := decodeLookupKey(req.LookupKey)
	if aerr != nil {
		return aerr
	}
	if len(req.Message) > MaxMessageLen || len(req.Requester) > 200 {
		return errorf(http.StatusBadRequest, httpx.CodeTooLong, "message or requester too long")
	}
	localID, _, ok, err := n.records.Owner(k)
	if err != nil {
		return err
	}
	if !ok {
		n.audit(r.Context(), AuditEvent{Action: "contact-request-received", Actor: "node:" + peer, Purpose: req.Purpose, Peer: peer, Outcome: "invalid", Subject: [][16]byte{k}})
		return errorf(http.StatusNotFound, httpx.CodeNoRecord, "this agency holds no current record under that key")
	}
	status := "accepted"
	if n.cfg.ContactPolicy == "refer" {
		status = "pending"
	}
	rc := ReceivedContact{At: n.opt.Now().UTC(), FromNode: peer, FromAgency: n.opt.Peers.Agency(peer), Requester: req.Requester, Purpose: req.Purpose, LocalID: localID, Message: req.Message, Status: status}
	n.contacts.add(rc)
	n.audit(r.Context(), AuditEvent{Action: "contact-request-received", Actor: "node:" + peer, Purpose: req.Purpose, Peer: peer, LocalID: localID, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
	n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &rc})
	ans := ContactAnswer{Status: status, Agency: n.cfg.Agency}
	if status == "accepted" {
		ans.Contact = n.cfg.Contact
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (n *Node) handleContactList(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"received": n.contacts.all()})
	return nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) && x == s {
			return true
		}
	}
	return false
}

package node

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/contacts"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// Contact requests, both sides (see node/internal/contacts for the store
// and the state machine):
//
//   - The requester (POST /v1/contact-requests) stores the request as
//     "new" under an id of its own, then asks the holder over the peer
//     transport (PeerContactPath) with that id. If the holder cannot take
//     it the stored request is deleted (it was never acknowledged) and the
//     practitioner gets the error.
//   - The holder stores what it received, under an id of its own, before it
//     answers, decided at once by its policy: "accept" answers with the
//     duty contact (Config.Contact) in the reply, and pushes that answer
//     once more half a minute later as below (a requester that stopped
//     before committing the reply still gets it); "refer", or "accept"
//     with no contact configured, keeps it "new" for a person. Its staff see it live ("contact-request" notice) and in
//     GET /v1/contact-requests, and answer with a named contact or decline
//     with a reason (POST /v1/contact-requests/{id}/answer, /decline).
//   - A decision taken by a person travels back to the requester over the
//     peer transport (PeerContactAnswerPath). The holder commits it marked
//     undelivered, tries at once, and retries in the background with
//     capped back-off until the requester acknowledges it (durable push:
//     the requester's practitioner is told live, and no node has to poll).
//     A requester that no longer knows the request (404) is given up on,
//     and that is audited.
//   - The requester commits the decision before acknowledging it, tells
//     its practitioner live ("contact-answer" notice), and lists it under
//     the practitioner's own requests. A repeat of the same decision (its
//     acknowledgement was lost) is acknowledged again; a different one is
//     refused (409).
//
// Every step is audited on the side where it happens, never with an NHS
// number: contact-request-sent, contact-request-received,
// contact-request-answered, contact-request-declined (holder: by a person
// or, for "accept", by the node's policy), contact-answer-sent (holder:
// delivered, or given up), contact-answer-received (requester), and
// contact-request-expired (either side, at retention).
//
// Who may do what: practitioners send requests and see their own sent
// ones; practitioners and operators see every request the agency
// received and may answer or decline it (the agency decides who staffs
// its inbox by giving those roles); operators also see every request the
// agency's practitioners sent.

type contactRequest struct {
	NodeID    string `json:"nodeId"`
	Purpose   string `json:"purpose"`
	LookupKey string `json:"lookupKey,omitempty"`
	NHSNumber string `json:"nhsNumber,omitempty"`
	Message   string `json:"message,omitempty"`
	// EntryKey and Shield ask a shielded holder through its broker
	// (NodeID): the entry's key and its sealed holder, as a locate answer
	// or the page's opened entry gives them (broker.go).
	EntryKey string `json:"entryKey,omitempty"`
	Shield   string `json:"shield,omitempty"`
}

// peerContact is what travels to the holder: never the NHS number.
type peerContact struct {
	// ID is the requester's id for the request: the holder's decision
	// comes back under it.
	ID        string `json:"id"`
	LookupKey string `json:"lookupKey"`
	Purpose   string `json:"purpose"`
	Requester string `json:"requester"`
	Message   string `json:"message,omitempty"`
	// Origin is set by a broker relaying to a shielded holder: the node
	// that asked (the caller is the broker, and ID is the broker's).
	Origin string `json:"origin,omitempty"`
}

// ContactAnswer is the holder's reply to a contact request, and the
// requester's answer to its practitioner (with ID, the requester's id).
type ContactAnswer struct {
	ID      string `json:"id,omitempty"`
	Status  string `json:"status"` // accepted | pending
	Contact string `json:"contact,omitempty"`
	Agency  string `json:"agency,omitempty"`
	// Broker is the agency a request for a shielded holder went through.
	Broker string `json:"broker,omitempty"`
}

// peerContactAnswer is a holder's decision, sent to the requester (or,
// through a broker, to the broker and by it to the requester).
type peerContactAnswer struct {
	ID      string `json:"id"`
	State   string `json:"state"` // answered | declined
	Contact string `json:"contact,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Consent: a shielded holder agreed to be named; Holder (broker to
	// requester only) names it then.
	Consent bool   `json:"consent,omitempty"`
	Holder  string `json:"holder,omitempty"`
}

// PeerContactAnswerPath is the node-to-node endpoint on a requester that
// takes a holder's decision.
const PeerContactAnswerPath = "/peer/v1/contact-answers"

// ContactView is a contact request as the API and notices show it to this
// node's staff.
type ContactView struct {
	ID string `json:"id"`
	// Direction: sent (by this node's practitioner) or received.
	Direction string `json:"direction"`
	// State: new, answered or declined.
	State string `json:"state"`
	// NodeID and Agency are the other side: the holder of a sent request,
	// the requester's node of a received one.
	NodeID    string `json:"nodeId"`
	Agency    string `json:"agency,omitempty"`
	Requester string `json:"requester"`
	Purpose   string `json:"purpose"`
	// LocalID (received) is the holder's record. A sent request does not
	// show its subject: not the number, which this node may never have
	// seen, and not the lookup key, which is answered only to whoever sent
	// the number or the key (the page keeps its own label for the request
	// id, in the browser).
	LocalID   string    `json:"localId,omitempty"`
	Message   string    `json:"message,omitempty"`
	Contact   string    `json:"contact,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	DecidedBy string    `json:"decidedBy,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	// Delivery (received or relayed, decided): "pending" until the
	// requester has the decision, then "delivered", or "failed" when it no
	// longer knew it.
	Delivery string `json:"delivery,omitempty"`
	// Through a broker (shielded holders): Broker and Via are the broker's
	// node id and agency. Sent: NodeID and Agency name the holder only once
	// it consented (Consent); until then Agency is [ShieldedService].
	// Received (at the shielded holder): NodeID and Agency are the asking
	// node. Relayed (direction "relayed", at the broker): NodeID and Agency
	// are the asking node; the holder is not shown.
	Broker  string `json:"broker,omitempty"`
	Via     string `json:"via,omitempty"`
	Consent bool   `json:"consent,omitempty"`
}

func contactView(r contacts.Request) ContactView {
	v := ContactView{ID: r.ID, Direction: string(r.Side), State: string(r.State), NodeID: r.Peer, Agency: r.PeerAgency,
		Requester: r.Requester, Purpose: r.Purpose, Message: r.Message, Contact: r.Contact, Reason: r.Reason,
		DecidedBy: r.DecidedBy, Created: r.Created, Updated: r.Updated}
	switch {
	case r.Side == contacts.Sent && r.Brokered:
		v.Broker, v.Via, v.NodeID, v.Agency = r.Peer, r.PeerAgency, r.Named, cmp.Or(r.NamedAgency, ShieldedService)
	case r.Side == contacts.Received && r.Origin != "":
		v.Broker, v.Via, v.NodeID, v.Agency = r.Peer, r.PeerAgency, r.Origin, r.OriginAgency
	}
	v.Consent = r.Consent
	if r.Side != contacts.Sent {
		v.LocalID = r.LocalID
		switch {
		case r.State == contacts.New:
		case r.Undelivered:
			v.Delivery = "pending"
		case r.GaveUp:
			v.Delivery = "failed"
		default:
			v.Delivery = "delivered"
		}
	}
	return v
}

// MaxMessageLen bounds a contact request's free-text message.
const MaxMessageLen = contacts.MaxMessageLen

// contactDecisionBy is who decided a request answered by the holder's
// policy (Config.ContactPolicy "accept").
const contactDecisionBy = "policy"

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
	if !contacts.ValidText(req.Message, MaxMessageLen, false) {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "message must be one line of text")
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
		holder := func(h Holding) bool { return h.NodeID == req.NodeID }
		if req.Shield != "" {
			holder = func(h Holding) bool { return encodeEntryKey(h.EntryPub) == req.EntryKey }
		}
		k, err := n.contactLookup(r.Context(), req.Purpose, canon, holder)
		if err != nil {
			return err
		}
		lookup = k
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
		n.audit(r.Context(), AuditEvent{Action: string(audit.ActionContactRequestSent), Actor: p.Name, Purpose: req.Purpose, Count: 1, Outcome: "denied", Subject: [][16]byte{lookup}})
		return errorf(http.StatusNotFound, httpx.CodeUnknownNode, "nodeId names no member of the federation")
	}
	if req.Shield != "" || req.EntryKey != "" {
		return n.sendThroughBroker(w, r, req, lookup)
	}
	var ans ContactAnswer
	rec, err := n.sendContactRequest(r.Context(), req, lookup, false, PeerContactPath, func(rec contacts.Request) any {
		return peerContact{ID: rec.ID, LookupKey: encodeKey(lookup), Purpose: req.Purpose, Requester: rec.Requester, Message: req.Message}
	}, &ans)
	if err != nil {
		return err
	}
	now := rec.Created
	if ans.Status == "accepted" {
		if !contacts.ValidText(ans.Contact, contacts.MaxContactLen, false) {
			ans.Contact = ""
		}
		contact := ans.Contact
		if strings.TrimSpace(contact) == "" {
			// A holder with no duty contact configured: say whom to ask.
			contact = "the duty desk of " + rec.PeerAgency
		}
		d := contacts.Decision{State: contacts.Answered, Contact: clip(contact, contacts.MaxContactLen), By: contactDecisionBy}
		if got, err := n.contacts.Decide(rec.ID, contacts.Sent, d, now); err != nil && !(errors.Is(err, contacts.ErrDecided) && got.Same(d)) {
			return err
		}
		n.audit(r.Context(), AuditEvent{Action: "contact-answer-received", Actor: "node:" + req.NodeID, Purpose: req.Purpose, Peer: req.NodeID, Count: 1, Outcome: "ok", Subject: [][16]byte{lookup}})
	}
	ans.ID = rec.ID
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// sendContactRequest is the requester's side of a request, to a holder
// (PeerContactPath) or through a broker (PeerBrokerPath, brokered): it
// stores the request — before the peer is asked, so that a decision sent
// back at once finds it — sends body(rec) to the peer at path, decoding
// its answer into out, and audits contact-request-sent. A request the peer
// did not take is removed again (never acknowledged: the practitioner is
// told it failed) and answered with the peer's refusal or an outage.
func (n *Node) sendContactRequest(ctx context.Context, req *contactRequest, lookup [16]byte, brokered bool, path string, body func(contacts.Request) any, out any) (contacts.Request, error) {
	p := principalFrom(ctx)
	now := n.opt.Now().UTC()
	rec := contacts.Request{ID: contacts.NewID(), Side: contacts.Sent, Peer: req.NodeID, PeerAgency: clip(n.opt.Peers.Agency(req.NodeID), contacts.MaxNameLen),
		Brokered: brokered, Requester: p.Name, Purpose: req.Purpose, Lookup: lookup, Message: req.Message, State: contacts.New, Created: now, Updated: now}
	if err := n.contacts.Create(rec); err != nil {
		return rec, err
	}
	err := n.opt.Peers.Call(ctx, req.NodeID, path, body(rec), out)
	outcome := "ok"
	var aerr *apiError
	if err != nil {
		var refused bool
		aerr, refused = holderError(err)
		outcome = "denied"
		if !refused {
			outcome = "error"
			n.log.Warn("contact request failed", "peer", req.NodeID, "brokered", brokered, "err", err)
		}
		if derr := n.contacts.Delete(rec.ID); derr != nil {
			n.log.Error("contact request: removing the unsent request failed", "err", derr)
		}
	}
	n.audit(ctx, AuditEvent{Action: string(audit.ActionContactRequestSent), Actor: p.Name, Purpose: req.Purpose, Peer: req.NodeID, Count: 1, Outcome: outcome, Subject: [][16]byte{lookup}})
	if aerr != nil {
		return rec, aerr
	}
	return rec, nil
}

// clip cuts s to at most max bytes on a rune boundary.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !isRuneStart(s[max]) {
		max--
	}
	return s[:max]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

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
	if n.opt.Peers == nil {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	if err := n.brokeredCheck(peer, req); err != nil {
		return err
	}
	// The asking node: the caller, or for a request through the broker,
	// the node the broker relays for.
	asker := cmp.Or(req.Origin, peer)
	if !containsStr(n.opt.Peers.Purposes(asker), req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	k, aerr := decodeLookupKey(req.LookupKey)
	if aerr != nil {
		return aerr
	}
	if len(req.Message) > MaxMessageLen || len(req.Requester) > contacts.MaxNameLen {
		return errorf(http.StatusBadRequest, httpx.CodeTooLong, "message or requester too long")
	}
	if !contacts.ValidID(req.ID) || !contacts.ValidText(req.Requester, contacts.MaxNameLen, true) || !contacts.ValidText(req.Message, MaxMessageLen, false) {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "a contact request needs an id, a requester and one-line text")
	}
	localID, _, ok, err := n.records.Owner(k)
	if err != nil {
		return err
	}
	if !ok {
		n.audit(r.Context(), AuditEvent{Action: "contact-request-received", Actor: "node:" + peer, Purpose: req.Purpose, Peer: asker, Outcome: "invalid", Subject: [][16]byte{k}})
		return errorf(http.StatusNotFound, httpx.CodeNoRecord, "this agency holds no current record under that key")
	}
	now := n.opt.Now().UTC()
	rec := contacts.Request{ID: contacts.NewID(), Side: contacts.Received, Peer: peer, PeerAgency: clip(n.opt.Peers.Agency(peer), contacts.MaxNameLen),
		RemoteID: req.ID, Requester: req.Requester, Purpose: req.Purpose, Lookup: k, LocalID: localID, Message: req.Message,
		State: contacts.New, Created: now, Updated: now}
	if req.Origin != "" {
		rec.Origin, rec.OriginAgency = req.Origin, clip(n.opt.Peers.Agency(req.Origin), contacts.MaxNameLen)
	}
	// Through a broker, being named is the holder's staff's decision:
	// never answered by policy.
	accept := n.cfg.ContactPolicy == "accept" && contacts.ValidText(n.cfg.Contact, contacts.MaxContactLen, true) && req.Origin == ""
	if accept {
		// Decided by the policy and answered in this reply. It is also
		// pushed once more, a little later, like a person's decision: a
		// requester that stopped before committing this reply still gets
		// it (a requester that has it acknowledges the repeat).
		rec.State, rec.Contact, rec.DecidedBy = contacts.Answered, n.cfg.Contact, contactDecisionBy
		rec.Undelivered, rec.NextAttempt = true, now.Add(contactRetryBase)
	}
	if err := n.contacts.Create(rec); err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "contact-request-received", Actor: "node:" + peer, Purpose: req.Purpose, Peer: asker, LocalID: localID, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
	ans := ContactAnswer{Status: "pending", Agency: n.cfg.Agency}
	if accept {
		n.audit(r.Context(), AuditEvent{Action: "contact-request-answered", Actor: "node:" + n.cfg.NodeID, Purpose: req.Purpose, Peer: peer, LocalID: localID, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
		ans.Status, ans.Contact = "accepted", n.cfg.Contact
	}
	v := contactView(rec)
	n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &v})
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// contactListMax bounds each list of GET /v1/contact-requests (newest
// first).
const contactListMax = 500

func (n *Node) handleContactList(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	received, err := n.contacts.List(contacts.Received, nil, contactListMax)
	if err != nil {
		return err
	}
	mine := func(c contacts.Request) bool { return p.Role == RoleOperator || c.Requester == p.Name }
	sent, err := n.contacts.List(contacts.Sent, mine, contactListMax)
	if err != nil {
		return err
	}
	relayed, err := n.contacts.List(contacts.Relayed, nil, contactListMax)
	if err != nil {
		return err
	}
	out := struct {
		Received []ContactView `json:"received"`
		Sent     []ContactView `json:"sent"`
		// Relayed: requests this node, a broker, relayed to the shielded
		// services it speaks for (the services are not named).
		Relayed []ContactView `json:"relayed"`
	}{make([]ContactView, 0, len(received)), make([]ContactView, 0, len(sent)), make([]ContactView, 0, len(relayed))}
	for _, c := range received {
		out.Received = append(out.Received, contactView(c))
	}
	for _, c := range relayed {
		out.Relayed = append(out.Relayed, contactView(c))
	}
	for _, c := range sent {
		out.Sent = append(out.Sent, contactView(c))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// contactDecision is the body of POST /v1/contact-requests/{id}/answer
// ({"contact"}, and for a request through a broker "consent": true to be
// named) and /decline ({"reason"}).
type contactDecision struct {
	Contact string `json:"contact,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Consent bool   `json:"consent,omitempty"`
}

func (n *Node) handleContactAnswer(w http.ResponseWriter, r *http.Request, req *contactDecision) error {
	if req.Reason != "" || !contacts.ValidText(req.Contact, contacts.MaxContactLen, true) {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "name a contact: a person's name, role and phone or email, one line of at most %d bytes", contacts.MaxContactLen)
	}
	if req.Consent {
		if rec, err := n.contacts.Get(r.PathValue("id")); err == nil && rec.Side == contacts.Received && rec.Origin == "" {
			return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "consent (to be named) applies to requests through a broker only")
		}
	}
	return n.decideContact(w, r, contacts.Decision{State: contacts.Answered, Contact: req.Contact, Consent: req.Consent})
}

func (n *Node) handleContactDecline(w http.ResponseWriter, r *http.Request, req *contactDecision) error {
	if req.Consent {
		return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "a decline names nobody: consent goes with an answer")
	}
	if req.Contact != "" || !contacts.ValidText(req.Reason, contacts.MaxReasonLen, true) {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "give a reason: one line of at most %d bytes", contacts.MaxReasonLen)
	}
	return n.decideContact(w, r, contacts.Decision{State: contacts.Declined, Reason: req.Reason})
}

// decideContact takes a person's decision on a received request: it
// commits it (marked undelivered), audits it, tells the other staff, and
// tries to deliver it to the requester before answering; the answer says
// whether that worked ("delivery"), and the background retry keeps trying
// if not.
func (n *Node) decideContact(w http.ResponseWriter, r *http.Request, d contacts.Decision) error {
	p := principalFrom(r.Context())
	id := r.PathValue("id")
	if !contacts.ValidID(id) {
		return errorf(http.StatusNotFound, httpx.CodeContactNotFound, "no contact request received with that id")
	}
	d.By = clip(p.Name, contacts.MaxNameLen)
	rec, err := n.contacts.Decide(id, contacts.Received, d, n.opt.Now().UTC())
	switch {
	case errors.Is(err, contacts.ErrNotFound):
		return errorf(http.StatusNotFound, httpx.CodeContactNotFound, "no contact request received with that id")
	case errors.Is(err, contacts.ErrDecided):
		return errorf(http.StatusConflict, httpx.CodeContactDecided, "this contact request was already %s", rec.State)
	case errors.Is(err, contacts.ErrInvalid):
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "the decision is not valid")
	case err != nil:
		return err
	}
	action := "contact-request-answered"
	if d.State == contacts.Declined {
		action = "contact-request-declined"
	}
	n.audit(r.Context(), AuditEvent{Action: action, Actor: p.Name, Purpose: rec.Purpose, Peer: rec.Peer, LocalID: rec.LocalID, Count: 1, Outcome: "ok", Subject: [][16]byte{rec.Lookup}})
	rec = n.deliverContactDecision(r.Context(), rec)
	v := contactView(rec)
	n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &v})
	writeJSON(w, http.StatusOK, v)
	return nil
}

// Delivery of holder decisions: one attempt at once, then retries paced
// by contactRetryBase·2^attempts up to contactRetryMax, on the node's
// clock, checked every contactRetryEvery.
const (
	contactDeliverTimeout = 10 * time.Second
	contactRetryBase      = 30 * time.Second
	contactRetryMax       = 15 * time.Minute
	contactRetryEvery     = 30 * time.Second
)

// deliverContactDecision sends rec's decision to the requester once and
// records the outcome; it returns rec as it now stands.
func (n *Node) deliverContactDecision(ctx context.Context, rec contacts.Request) contacts.Request {
	if n.opt.Peers == nil {
		return rec
	}
	ctx, cancel := context.WithTimeout(ctx, contactDeliverTimeout)
	defer cancel()
	ans := peerContactAnswer{ID: rec.RemoteID, State: string(rec.State), Contact: rec.Contact, Reason: rec.Reason, Consent: rec.Consent}
	action, subject := string(audit.ActionContactAnswerSent), [][16]byte{rec.Lookup}
	if rec.Side == contacts.Relayed {
		// A broker passes the holder's decision on, naming the holder only
		// with its consent, and keeps nothing about the person.
		action, subject = string(audit.ActionContactAnswerRelayed), nil
		if rec.Consent {
			ans.Holder = rec.Holder
		}
	}
	err := n.opt.Peers.Call(ctx, rec.Peer, PeerContactAnswerPath, ans, &struct{}{})
	var pe *PeerError
	gaveUp := err != nil && errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && pe.Status != http.StatusTooManyRequests && pe.Status != http.StatusUnauthorized
	next := n.opt.Now().Add(min(contactRetryBase<<min(rec.Attempts, 10), contactRetryMax))
	if serr := n.contacts.Delivered(rec.ID, err == nil, gaveUp, next); serr != nil {
		n.log.Error("contact answer: recording the delivery failed", "err", serr)
		return rec
	}
	switch {
	case err == nil:
		n.audit(ctx, AuditEvent{Action: action, Actor: "node:" + n.cfg.NodeID, Purpose: rec.Purpose, Peer: rec.Peer, LocalID: rec.LocalID, Count: 1, Outcome: "ok", Subject: subject})
	case gaveUp:
		n.log.Warn("contact answer refused by the requester; not retried", "peer", rec.Peer, "err", err)
		n.audit(ctx, AuditEvent{Action: action, Actor: "node:" + n.cfg.NodeID, Purpose: rec.Purpose, Peer: rec.Peer, LocalID: rec.LocalID, Count: 1, Outcome: "denied", Subject: subject})
	default:
		n.log.Info("contact answer not delivered yet; will retry", "peer", rec.Peer, "attempt", rec.Attempts+1, "err", err)
	}
	if got, gerr := n.contacts.Get(rec.ID); gerr == nil {
		rec = got
	}
	return rec
}

// retryContactDecisions delivers every holder decision that is due.
func (n *Node) retryContactDecisions(ctx context.Context) {
	due, err := n.contacts.Due(n.opt.Now())
	if err != nil {
		n.log.Error("contact answers: listing those due failed", "err", err)
		return
	}
	for _, rec := range due {
		if ctx.Err() != nil {
			return
		}
		if rec = n.deliverContactDecision(ctx, rec); !rec.Undelivered {
			v := contactView(rec)
			n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &v})
		}
	}
}

// contactLoop retries undelivered decisions until ctx ends.
func (n *Node) contactLoop(ctx context.Context) {
	t := time.NewTicker(contactRetryEvery)
	defer t.Stop()
	for {
		n.retryContactDecisions(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handlePeerContactAnswer takes a holder's decision on a request this
// node sent: committed before it is acknowledged, audited, and told to the
// practitioner who asked.
func (n *Node) handlePeerContactAnswer(w http.ResponseWriter, r *http.Request, req *peerContactAnswer) error {
	peer := peerFrom(r.Context())
	notFound := errorf(http.StatusNotFound, httpx.CodeContactNotFound, "this node sent no such contact request to your node")
	if !contacts.ValidID(req.ID) {
		return notFound
	}
	rec, err := n.contacts.Get(req.ID)
	if err == nil && rec.Side == contacts.Relayed && rec.Holder == peer {
		return n.relayAnswer(w, r, rec, req)
	}
	if errors.Is(err, contacts.ErrNotFound) || err == nil && (rec.Side != contacts.Sent || rec.Peer != peer) {
		return notFound
	}
	if err != nil {
		return err
	}
	d := contacts.Decision{State: contacts.State(req.State), Contact: req.Contact, Reason: req.Reason, By: peer, Consent: req.Consent}
	if req.Consent && rec.Brokered {
		// The broker names the holder that consented: a member.
		if !contacts.ValidText(req.Holder, contacts.MaxIDLen, true) || len(n.opt.Peers.Purposes(req.Holder)) == 0 {
			return errorf(http.StatusBadRequest, httpx.CodeUnknownNode, "the named holder is no member of the federation")
		}
		d.Named, d.NamedAgency = req.Holder, clip(n.opt.Peers.Agency(req.Holder), contacts.MaxNameLen)
	}
	got, err := n.contacts.Decide(rec.ID, contacts.Sent, d, n.opt.Now().UTC())
	switch {
	case errors.Is(err, contacts.ErrDecided) && got.Same(d):
		writeJSON(w, http.StatusOK, struct{}{}) // a repeat: its acknowledgement was lost
		return nil
	case errors.Is(err, contacts.ErrDecided):
		return errorf(http.StatusConflict, httpx.CodeContactDecided, "this contact request was already %s", got.State)
	case errors.Is(err, contacts.ErrInvalid):
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "a decision is answered with a contact or declined with a reason, one line each")
	case err != nil:
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "contact-answer-received", Actor: "node:" + peer, Purpose: got.Purpose, Peer: peer, Count: 1, Outcome: "ok", Subject: [][16]byte{got.Lookup}})
	v := contactView(got)
	n.hub.toUser(got.Requester, Notice{Type: "contact-answer", Contact: &v})
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

var (
	descContacts    = prometheus.NewDesc(MetricContacts, "Contact requests this node holds, by side (sent, received) and state (new, answered, declined).", []string{"side", "state"}, nil)
	descUndelivered = prometheus.NewDesc(MetricUndelivered, "Decisions on received contact requests not yet delivered to the requester (retried in the background).", nil, nil)
)

// contactGauges reads the contact request gauges at scrape time.
type contactGauges struct{ n *Node }

func (contactGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descContacts
	ch <- descUndelivered
}

func (g contactGauges) Collect(ch chan<- prometheus.Metric) {
	counts, undelivered, err := g.n.contacts.Counts()
	if err != nil {
		return
	}
	for _, side := range []contacts.Side{contacts.Sent, contacts.Received} {
		for _, st := range []contacts.State{contacts.New, contacts.Answered, contacts.Declined} {
			ch <- prometheus.MustNewConstMetric(descContacts, prometheus.GaugeValue, float64(counts[side][st]), string(side), string(st))
		}
	}
	ch <- prometheus.MustNewConstMetric(descUndelivered, prometheus.GaugeValue, float64(undelivered))
}

// contactSweepBatch bounds the requests deleted in one transaction.
const contactSweepBatch = 1000

// sweepContacts deletes the requests unchanged for Config.ContactRetention
// and audits each; it returns how many it deleted.
func (n *Node) sweepContacts(ctx context.Context) (int, error) {
	total := 0
	for {
		gone, err := n.contacts.DeleteStale(n.opt.Now().Add(-n.cfg.ContactRetention.D()), contactSweepBatch)
		if err != nil {
			return total, err
		}
		for _, c := range gone {
			n.audit(ctx, AuditEvent{Action: "contact-request-expired", Actor: "node:" + n.cfg.NodeID, Purpose: c.Purpose, Peer: c.Peer, LocalID: c.LocalID, Count: 1, Outcome: "ok", Subject: [][16]byte{c.Lookup}})
		}
		total += len(gone)
		if len(gone) < contactSweepBatch {
			if total > 0 {
				n.log.Info("retention sweep deleted contact requests", "count", total)
			}
			return total, nil
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) && x == s {
			return true
		}
	}
	return false
}

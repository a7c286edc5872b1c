package node

import (
	"encoding/base64"
	"errors"
	"net/http"
	"slices"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/contacts"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/port"
)

// Shielded services and their brokers (docs/DESIGN.md, "Shielded
// services"). A shielded node (Config.Shielded) publishes entries that name
// its broker (Config.Broker) and carry its identity sealed to the broker,
// and hands them to the broker to publish (PeerShieldedEntriesPath; the
// node's Index does, adapter.LocatorIndex.WithRelay), so that no peer sees
// it push them first. Contact requests for it go through the broker:
//
//   - The requester (POST /v1/contact-requests with nodeId = the broker,
//     entryKey and shield from the opened entry) stores the request as
//     sent, Brokered, and calls the broker (PeerBrokerPath) with the lookup
//     key, the entry key and the shield. It never learns the holder unless
//     the holder consents.
//   - The broker opens the shield with its own node key (Options.Shields)
//     and checks the holder's signature; it relays only for the nodes in
//     Config.BrokerFor (others: 403 not_broker, said the same way whatever
//     the reason, so that a refusal tells nothing of the holder). It stores
//     a relayed request — the requester, its id, the holder, the purpose and
//     the message, nothing about the person (no lookup key, no record) — and
//     calls the holder (PeerContactPath, with Origin = the requester) before
//     answering "pending". Audited at the broker without a subject:
//     contact-request-relayed.
//   - The shielded holder refuses every request that does not come from
//     its broker (403 not_broker, before looking at its records, so that a
//     direct request cannot tell whether it holds one), keeps a brokered one
//     for its staff (never answered by policy: consent is a person's), and
//     shows it as "through <broker> from <requester>". Its staff answer
//     naming the agency ("consent": the requester learns the holder and the
//     contact), answer without naming it (the contact text reaches the
//     requester through the broker), or decline.
//   - The decision goes back to the broker as any decision does (retried
//     until delivered); the broker commits it and passes it on to the
//     requester, with the holder's node id only on consent, retried until
//     delivered in the same way (contact-answer-relayed). The requester's
//     list says "asked through <broker>" until consent names the holder.

// PeerBrokerPath is the node-to-node endpoint on a broker that takes a
// contact request for a shielded holder.
const PeerBrokerPath = "/peer/v1/brokered-contact-requests"

// PeerShieldedEntriesPath is the node-to-node endpoint on a broker that
// takes a shielded node's signed entries (ShieldedEntries) and publishes
// them: the shielded node never pushes its own entries into gossip, so the
// first peers to receive a fresh version learn only that the broker sent
// it.
const PeerShieldedEntriesPath = "/peer/v1/shielded-entries"

// maxShieldLen bounds a shield in a request (the broker checks its exact
// size when it opens it).
const maxShieldLen = 1024

// peerBrokered is what a requester sends a broker: never the NHS number.
type peerBrokered struct {
	ID        string `json:"id"`
	LookupKey string `json:"lookupKey"`
	EntryKey  string `json:"entryKey"`
	Shield    string `json:"shield"`
	Purpose   string `json:"purpose"`
	Requester string `json:"requester"`
	Message   string `json:"message,omitempty"`
}

func encodeEntryKey(k [32]byte) string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// decodeBase64 accepts base64url (unpadded) or standard base64.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	return b, err
}

// decodeShield reads a request's entry key (32 bytes) and shield.
func decodeShield(entryKey, shield string) ([32]byte, []byte, *apiError) {
	var k [32]byte
	bad := errorf(http.StatusBadRequest, httpx.CodeInvalidShield, "a request through a broker needs entryKey (base64 of 32 bytes) and shield (base64, at most %d bytes), as the shielded entry gives them", maxShieldLen)
	b, err := decodeBase64(entryKey)
	if err != nil || len(b) != 32 || len(shield) > 2*maxShieldLen {
		return k, nil, bad
	}
	copy(k[:], b)
	sh, err := decodeBase64(shield)
	if err != nil || len(sh) == 0 || len(sh) > maxShieldLen {
		return k, nil, bad
	}
	return k, sh, nil
}

// sendThroughBroker is the requester's side of a request for a shielded
// holder: req.NodeID is the broker (a member, checked by the caller).
func (n *Node) sendThroughBroker(w http.ResponseWriter, r *http.Request, req *contactRequest, lookup [16]byte) error {
	if _, _, aerr := decodeShield(req.EntryKey, req.Shield); aerr != nil {
		return aerr
	}
	rec, err := n.sendContactRequest(r.Context(), req, lookup, true, PeerBrokerPath, func(rec contacts.Request) any {
		return peerBrokered{ID: rec.ID, LookupKey: encodeKey(lookup), EntryKey: req.EntryKey, Shield: req.Shield, Purpose: req.Purpose, Requester: rec.Requester, Message: req.Message}
	}, &struct{}{})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ContactAnswer{ID: rec.ID, Status: "pending", Broker: rec.PeerAgency})
	return nil
}

// notBroker is the broker's one refusal, whatever its reason.
func notBroker() *apiError {
	return errorf(http.StatusForbidden, httpx.CodeNotBroker, "this node does not relay contact requests for that shielded service")
}

// handlePeerBrokered is the broker's side: open the shield, check the
// holder is one this node relays for, store the relay and ask the holder.
func (n *Node) handlePeerBrokered(w http.ResponseWriter, r *http.Request, req *peerBrokered) error {
	peer := peerFrom(r.Context())
	if n.opt.Peers == nil || !containsStr(n.opt.Peers.Purposes(peer), req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	k, aerr := decodeLookupKey(req.LookupKey)
	if aerr != nil {
		return aerr
	}
	entryPub, shield, aerr := decodeShield(req.EntryKey, req.Shield)
	if aerr != nil {
		return aerr
	}
	if len(req.Message) > MaxMessageLen || len(req.Requester) > contacts.MaxNameLen {
		return errorf(http.StatusBadRequest, httpx.CodeTooLong, "message or requester too long")
	}
	if !contacts.ValidID(req.ID) || !contacts.ValidText(req.Requester, contacts.MaxNameLen, true) || !contacts.ValidText(req.Message, MaxMessageLen, false) {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "a contact request needs an id, a requester and one-line text")
	}
	denied := func(reason string) error {
		n.log.Info("brokered contact request refused", "requester", peer, "reason", reason)
		n.audit(r.Context(), AuditEvent{Action: string(audit.ActionContactRequestRelayed), Actor: "node:" + peer, Purpose: req.Purpose, Peer: peer, Count: 1, Outcome: "denied"})
		return notBroker()
	}
	if n.opt.Shields == nil || len(n.cfg.BrokerFor) == 0 {
		return denied("this node is nobody's broker")
	}
	holder, err := n.opt.Shields.OpenShield(k, entryPub, shield)
	if err != nil {
		return denied("the shield does not open here")
	}
	if !slices.Contains(n.cfg.BrokerFor, holder) {
		return denied("the holder is not in broker_for")
	}
	now := n.opt.Now().UTC()
	rel := contacts.Request{ID: contacts.NewID(), Side: contacts.Relayed, Peer: peer, PeerAgency: clip(n.opt.Peers.Agency(peer), contacts.MaxNameLen),
		RemoteID: req.ID, Holder: holder, Requester: req.Requester, Purpose: req.Purpose, Message: req.Message, State: contacts.New, Created: now, Updated: now}
	if err := n.contacts.Create(rel); err != nil {
		return err
	}
	err = n.opt.Peers.Call(r.Context(), holder, PeerContactPath, peerContact{
		ID: rel.ID, LookupKey: req.LookupKey, Purpose: req.Purpose, Requester: req.Requester, Message: req.Message, Origin: peer,
	}, &struct{}{})
	outcome := "ok"
	if err != nil {
		var refused bool
		aerr, refused = holderError(err)
		outcome = "denied"
		if !refused {
			outcome = "error"
			n.log.Warn("relaying a contact request failed", "err", err)
		}
		if derr := n.contacts.Delete(rel.ID); derr != nil {
			n.log.Error("contact request: removing the unrelayed request failed", "err", derr)
		}
	}
	n.audit(r.Context(), AuditEvent{Action: string(audit.ActionContactRequestRelayed), Actor: "node:" + peer, Purpose: req.Purpose, Peer: peer, Count: 1, Outcome: outcome})
	if aerr != nil {
		return aerr
	}
	v := contactView(rel)
	n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &v})
	writeJSON(w, http.StatusOK, ContactAnswer{Status: "pending"})
	return nil
}

// brokeredCheck is a shielded holder's rule for a peer's contact request:
// only its broker may bring one (with the asking node as origin), and a
// node that is not shielded takes none through a broker. It runs before
// the holder looks at its records.
func (n *Node) brokeredCheck(peer string, req *peerContact) error {
	switch {
	case n.cfg.Shielded && (req.Origin == "" || peer != n.cfg.Broker):
		return errorf(http.StatusForbidden, httpx.CodeNotBroker, "this service takes contact requests through its broker only")
	case !n.cfg.Shielded && req.Origin != "":
		return errorf(http.StatusForbidden, httpx.CodeNotBroker, "this node is not a shielded service")
	case req.Origin != "" && (!contacts.ValidText(req.Origin, contacts.MaxIDLen, true) || len(n.opt.Peers.Purposes(req.Origin)) == 0):
		return errorf(http.StatusBadRequest, httpx.CodeUnknownNode, "origin names no member of the federation")
	}
	return nil
}

// relayAnswer is the broker's side of a holder's decision on a relayed
// request: committed, then passed on to the requester (retried until
// delivered like any decision).
func (n *Node) relayAnswer(w http.ResponseWriter, r *http.Request, rec contacts.Request, req *peerContactAnswer) error {
	peer := peerFrom(r.Context())
	d := contacts.Decision{State: contacts.State(req.State), Contact: req.Contact, Reason: req.Reason, By: peer, Consent: req.Consent}
	got, err := n.contacts.Decide(rec.ID, contacts.Relayed, d, n.opt.Now().UTC())
	switch {
	case errors.Is(err, contacts.ErrDecided) && got.Same(d):
		writeJSON(w, http.StatusOK, struct{}{})
		return nil
	case errors.Is(err, contacts.ErrDecided):
		return errorf(http.StatusConflict, httpx.CodeContactDecided, "this contact request was already %s", got.State)
	case errors.Is(err, contacts.ErrInvalid):
		return errorf(http.StatusBadRequest, httpx.CodeInvalidText, "a decision is answered with a contact or declined with a reason, one line each")
	case err != nil:
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: string(audit.ActionContactAnswerReceived), Actor: "node:" + peer, Purpose: got.Purpose, Peer: peer, Count: 1, Outcome: "ok"})
	got = n.deliverContactDecision(r.Context(), got)
	v := contactView(got)
	n.hub.broadcastStaff(Notice{Type: "contact-request", Contact: &v})
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// handlePeerShieldedEntries is the broker's side of publishing for a
// shielded node in Config.BrokerFor: the entries are verified and merged as
// any received entry (the broker cannot open them), then pushed. Audited
// as entries-relayed, without a subject (the broker knows none).
func (n *Node) handlePeerShieldedEntries(w http.ResponseWriter, r *http.Request, req *ShieldedEntries) error {
	peer := peerFrom(r.Context())
	relay, ok := n.opt.Index.(EntryRelay)
	if !ok || !slices.Contains(n.cfg.BrokerFor, peer) {
		return errorf(http.StatusForbidden, httpx.CodeNotBroker, "this node does not publish for that node")
	}
	if len(req.Entries) == 0 || len(req.Entries) > MaxShieldedEntries {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidBatch, "send 1 to %d entries", MaxShieldedEntries)
	}
	applied, err := relay.RelayEntries(r.Context(), req.Entries)
	outcome := "ok"
	if err != nil {
		outcome = "invalid"
	}
	n.audit(r.Context(), AuditEvent{Action: string(audit.ActionEntriesRelayed), Actor: "node:" + peer, Peer: peer, Count: applied, Outcome: outcome})
	if err != nil {
		n.log.Warn("a shielded node's entries were refused", "peer", peer, "applied", applied, "err", err)
		return errorf(http.StatusBadRequest, httpx.CodeInvalidShield, "entry %d of %d was refused", applied+1, len(req.Entries))
	}
	writeJSON(w, http.StatusOK, struct {
		Applied int `json:"applied"`
	}{applied})
	return nil
}

// MaxShieldedEntries bounds one PeerShieldedEntriesPath call.
const MaxShieldedEntries = port.MaxShieldedEntries

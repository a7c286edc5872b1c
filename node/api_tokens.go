package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

type evaluateRequest struct {
	Purpose string   `json:"purpose"`
	Epoch   uint32   `json:"epoch"`
	Blinded []string `json:"blinded"`
}

type evaluateResponse struct {
	Epoch     uint32   `json:"epoch"`
	Evaluated []string `json:"evaluated"`
	Proof     string   `json:"proof"`
	// IssuerPublicKey verifies Proof (base64).
	IssuerPublicKey string `json:"issuerPublicKey,omitempty"`
}

// MaxElementBytes bounds one blinded element (a ristretto255 element is 32).
const MaxElementBytes = 64

func decodeBlinded(req *evaluateRequest, max int) ([][]byte, *apiError) {
	if len(req.Blinded) == 0 || len(req.Blinded) > max {
		return nil, errorf(http.StatusBadRequest, httpx.CodeInvalidBatch, "send 1 to %d blinded elements", max)
	}
	out := make([][]byte, len(req.Blinded))
	for i, s := range req.Blinded {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.RawURLEncoding.DecodeString(s)
		}
		if err != nil || len(b) == 0 || len(b) > MaxElementBytes {
			return nil, errorf(http.StatusBadRequest, httpx.CodeInvalidElement, "blinded element %d is not base64 of a group element", i)
		}
		out[i] = b
	}
	return out, nil
}

// evaluate runs one evaluation for this node's purposes: locally if this
// node is the issuer, otherwise forwarded to the issuer over the peer
// transport.
func (n *Node) evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	if epoch == 0 {
		epoch = n.cfg.Epoch
	}
	if n.opt.Issuer != nil && n.cfg.Issuer == n.cfg.NodeID {
		return n.issuerEvaluate(ctx, n.cfg.NodeID, n.cfg.Purposes, purpose, epoch, blinded)
	}
	if n.opt.Peers == nil {
		return nil, nil, ErrIssuerUnavailable
	}
	req := evaluateRequest{Purpose: purpose, Epoch: epoch, Blinded: make([]string, len(blinded))}
	for i, b := range blinded {
		req.Blinded[i] = base64.StdEncoding.EncodeToString(b)
	}
	var resp evaluateResponse
	if err := n.opt.Peers.Call(ctx, n.cfg.Issuer, PeerEvaluatePath, req, &resp); err != nil {
		if ae, ok := asPeerError(err); ok {
			return nil, nil, ae
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrIssuerUnavailable, err)
	}
	ev := make([][]byte, len(resp.Evaluated))
	for i, s := range resp.Evaluated {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: malformed answer", ErrIssuerUnavailable)
		}
		ev[i] = b
	}
	proof, err := base64.StdEncoding.DecodeString(resp.Proof)
	if err != nil || len(ev) != len(blinded) {
		return nil, nil, fmt.Errorf("%w: malformed answer", ErrIssuerUnavailable)
	}
	return ev, proof, nil
}

// issuerEvaluate is the issuer's side: the requester (a node id) must be
// authorised for purpose, within its rate, and every evaluation is audited
// (who, purpose, count — never an element).
func (n *Node) issuerEvaluate(ctx context.Context, requester string, authorised []string, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	if n.opt.Issuer == nil || n.cfg.Issuer != n.cfg.NodeID {
		return nil, nil, errorf(http.StatusMisdirectedRequest, httpx.CodeNotIssuer, "this node is not the issuer")
	}
	if epoch != n.cfg.Epoch {
		return nil, nil, errorf(http.StatusBadRequest, httpx.CodeUnknownEpoch, "epoch %d is not served here", epoch)
	}
	if !slices.Contains(authorised, purpose) {
		n.metrics.evaluated(purpose, authorised, outcomeDenied, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: "denied"})
		return nil, nil, errorf(http.StatusForbidden, httpx.CodePurpose, "the requesting node is not authorised for that purpose")
	}
	if ae := n.charge(ctx, "peer.evaluate", requester, blindedElements(blinded)); ae != nil {
		n.metrics.evaluated(purpose, authorised, outcomeDenied, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: "denied"})
		return nil, nil, ae
	}
	ev, proof, err := n.opt.Issuer.Evaluate(ctx, purpose, epoch, blinded)
	if err != nil {
		n.metrics.evaluated(purpose, authorised, outcomeError, len(blinded))
		n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: "error"})
		return nil, nil, errorf(http.StatusBadRequest, httpx.CodeEvaluationFailed, "the blinded elements could not be evaluated")
	}
	n.metrics.evaluated(purpose, authorised, outcomeOK, len(blinded))
	n.audit(ctx, AuditEvent{Action: "evaluate", Actor: "node:" + requester, Purpose: purpose, Count: len(blinded), Outcome: "ok"})
	return ev, proof, nil
}

// evaluatorFunc is an Evaluator made of a function: the node's own
// tokenizer evaluates through n.evaluate (local issuer or forwarding), so
// server-side tokenisation reaches the issuer the way the browser's does.
// Every caller of n.tok has checked the purpose against the node's
// configured set already (the handlers at their entry, republication with
// the set itself), so it is not checked again here.
type evaluatorFunc func(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error)

func (f evaluatorFunc) Evaluate(ctx context.Context, purpose string, epoch uint32, blinded [][]byte) ([][]byte, []byte, error) {
	return f(ctx, purpose, epoch, blinded)
}

func (n *Node) handleEvaluate(w http.ResponseWriter, r *http.Request, req *evaluateRequest) error {
	if !n.purposeAllowed(req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	blinded, aerr := decodeBlinded(req, n.cfg.MaxBatch)
	if aerr != nil {
		return aerr
	}
	p := principalFrom(r.Context())
	ev, proof, err := n.evaluate(r.Context(), req.Purpose, req.Epoch, blinded)
	if err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "evaluate-request", Actor: p.Name, Purpose: req.Purpose, Count: len(blinded), Outcome: "ok"})
	resp := evaluateResponse{Epoch: n.cfg.Epoch, Evaluated: make([]string, len(ev)), Proof: base64.StdEncoding.EncodeToString(proof),
		IssuerPublicKey: base64.StdEncoding.EncodeToString(n.opt.IssuerPublicKey)}
	for i, b := range ev {
		resp.Evaluated[i] = base64.StdEncoding.EncodeToString(b)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// PeerEvaluatePath is the node-to-node evaluation endpoint on the issuer.
const PeerEvaluatePath = "/peer/v1/evaluate"

// PeerContactPath is the node-to-node contact request endpoint on a holder.
const PeerContactPath = "/peer/v1/contact-requests"

// PeerHandler serves node-to-node calls. peerID tells who is calling (from
// the mutually authenticated transport); mount it on the federation's peer
// server.
func (n *Node) PeerHandler(peerID func(*http.Request) (string, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PeerEvaluatePath, n.peerRoute("peer.evaluate", peerID, jsonHandler(n, "peer.evaluate", n.handlePeerEvaluate)))
	mux.Handle("POST "+PeerContactPath, n.peerRoute("peer.contact", peerID, jsonHandler(n, "peer.contact", n.handlePeerContact)))
	mux.Handle("POST "+PeerContactAnswerPath, n.peerRoute("peer.contact-answer", peerID, jsonHandler(n, "peer.contact-answer", n.handlePeerContactAnswer)))
	return mux
}

type peerCtxKey struct{}

func (n *Node) peerRoute(name string, peerID func(*http.Request) (string, bool), h handlerFunc) http.Handler {
	return n.route(name, n.cfg.MaxBodyBytes, func(w http.ResponseWriter, r *http.Request) error {
		id, ok := peerID(r)
		if !ok || id == "" {
			return errorf(http.StatusUnauthorized, httpx.CodeUnauthenticated, "peer not authenticated")
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), peerCtxKey{}, id)))
	})
}

func peerFrom(ctx context.Context) string {
	s, _ := ctx.Value(peerCtxKey{}).(string)
	return s
}

func (n *Node) handlePeerEvaluate(w http.ResponseWriter, r *http.Request, req *evaluateRequest) error {
	blinded, aerr := decodeBlinded(req, n.cfg.MaxBatch)
	if aerr != nil {
		return aerr
	}
	peer := peerFrom(r.Context())
	var authorised []string
	if n.opt.Peers != nil {
		authorised = n.opt.Peers.Purposes(peer)
	}
	ev, proof, err := n.issuerEvaluate(r.Context(), peer, authorised, req.Purpose, req.Epoch, blinded)
	if err != nil {
		return err
	}
	resp := evaluateResponse{Epoch: req.Epoch, Evaluated: make([]string, len(ev)), Proof: base64.StdEncoding.EncodeToString(proof)}
	for i, b := range ev {
		resp.Evaluated[i] = base64.StdEncoding.EncodeToString(b)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type lookupRequest struct {
	LookupKey string `json:"lookupKey"`
	// Purpose is required: the purpose the key was made for, which this
	// node must be authorised for (Config.Purposes), as for locate.
	Purpose string `json:"purpose"`
}

func decodeLookupKey(s string) ([16]byte, *apiError) {
	var k [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(b) != 16 {
		return k, errorf(http.StatusBadRequest, httpx.CodeInvalidLookupKey, "lookupKey must be base64 of 16 bytes")
	}
	copy(k[:], b)
	return k, nil
}

// lookupResponse carries sealed entries: only a holder of the token's seal
// key can open them (the browser, with the wasm module).
type lookupResponse struct {
	Entries []string `json:"entries"`
	// Members are the federation's enrolled nodes and their public keys, so
	// that a client that opens entries itself can check holder signatures.
	Members []MemberKey `json:"members"`
	// Self is this node's id: a client that opens entries itself leaves its
	// own agency out of "who else is involved", as POST /v1/locate does
	// (see selfHolds there).
	Self string `json:"self"`
}

// handleLookup answers the sealed entries under a lookup key for a named
// purpose. The purpose is checked as locate checks it — the caller's role
// by the route, the purpose against the node's authorised set — and a
// refusal is audited as denied. A lookup key does not reveal the purpose it
// was made for, so a key for another purpose obtained elsewhere is not
// caught here; what keeps such a caller out is that it cannot make the key
// itself (the issuer evaluates only for the node's authorised purposes) and
// cannot open the entries without the matching seal key.
func (n *Node) handleLookup(w http.ResponseWriter, r *http.Request, req *lookupRequest) error {
	k, aerr := decodeLookupKey(req.LookupKey)
	if aerr != nil {
		return aerr
	}
	p := principalFrom(r.Context())
	if !n.purposeAllowed(req.Purpose) {
		// The requested name is the caller's choice: it is audited only when
		// it is one of the node's, so the log takes no arbitrary strings.
		n.audit(r.Context(), AuditEvent{Action: "lookup", Actor: p.Name, Outcome: "denied", Subject: [][16]byte{k}})
		if req.Purpose == "" {
			return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "purpose is required")
		}
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	sealed, err := n.opt.Index.Lookup(r.Context(), k)
	if err != nil {
		return err
	}
	resp := lookupResponse{Entries: make([]string, len(sealed)), Members: []MemberKey{}, Self: n.cfg.NodeID}
	if n.opt.Peers != nil {
		if ms := n.opt.Peers.MemberKeys(); ms != nil {
			resp.Members = ms
		}
	}
	for i, e := range sealed {
		resp.Entries[i] = base64.StdEncoding.EncodeToString(e)
	}
	n.audit(r.Context(), AuditEvent{Action: "lookup", Actor: p.Name, Purpose: req.Purpose, Count: len(sealed), Outcome: "ok", Subject: [][16]byte{k}})
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (req *evaluateRequest) elements() int { return len(req.Blinded) }

// blindedElements counts the issuer's cost of an evaluation.
type blindedElements [][]byte

func (b blindedElements) elements() int { return len(b) }

package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/port"
)

// issuerHealth remembers each issuer's last answer to this node, for
// operators (GET /v1/federation). Safe for concurrent use.
type issuerHealth struct {
	mu   sync.Mutex
	last map[string]issuerState // by node id
}

type issuerState struct {
	LastOK      time.Time
	LastError   string
	LastErrorAt time.Time
	// SlowAt is when the issuer last failed to answer within the hedge;
	// it orders issuers (issuerOrder) and is not shown.
	SlowAt time.Time
}

// note records an issuer's answer: err nil is a valid partial.
func (h *issuerHealth) note(issuer string, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = make(map[string]issuerState)
	}
	st := h.last[issuer]
	if err == nil {
		st.LastOK = now
	} else {
		st.LastError, st.LastErrorAt = issuerErrorText(err), now
	}
	h.last[issuer] = st
}

// slow records that the issuer did not answer within the hedge.
func (h *issuerHealth) slow(issuer string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = make(map[string]issuerState)
	}
	st := h.last[issuer]
	st.SlowAt = now
	h.last[issuer] = st
}

func (h *issuerHealth) get(issuer string) (issuerState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.last[issuer]
	return st, ok
}

// issuerErrorText says what went wrong in operators' words, from the error
// chain: a peer's API error keeps its code; anything else is reduced to its
// kind, since transport errors can be long and name addresses.
func issuerErrorText(err error) string {
	var ae *apiError
	var pe *port.PeerError
	switch {
	case errors.As(err, &ae):
		return string(ae.Code) + ": " + ae.Message
	case errors.As(err, &pe):
		return pe.Error()
	case errors.Is(err, errBadPartial):
		return "its partial evaluation failed its proof (rejected)"
	case strings.Contains(err.Error(), "deadline exceeded"):
		return "no answer in time"
	case errors.Is(err, ErrIssuerUnavailable):
		return "unreachable"
	default:
		return "failed"
	}
}

// errBadPartial marks a partial whose proof did not verify.
var errBadPartial = errors.New("node: partial evaluation failed its proof")

type federationResponse struct {
	Self    string            `json:"self"`
	Members []MemberKey       `json:"members"`
	Keys    []federationKey   `json:"keys"`
	Issuers []federationIssue `json:"issuers"`
	// Rotating is true while a key rotation is under way at this node;
	// Rotation is its work left (signpost_rotation_pending).
	Rotating bool           `json:"rotating"`
	Rotation []rotationItem `json:"rotation"`
}

type federationKey struct {
	Purpose  string            `json:"purpose"`
	Epoch    uint32            `json:"epoch"`
	T        int               `json:"t"`
	N        int               `json:"n"`
	GroupKey string            `json:"groupKey"`
	Issuers  []federationShare `json:"issuers"`
	// Share is true if this node holds a share of this key.
	Share bool `json:"share"`
}

type federationShare struct {
	NodeID      string `json:"nodeId"`
	Index       uint16 `json:"index"`
	PublicShare string `json:"publicShare"`
}

// federationIssue is one issuer node's reachability as this node has seen
// it: when it last gave a valid partial, and its last failure.
type federationIssue struct {
	NodeID      string     `json:"nodeId"`
	Agency      string     `json:"agency,omitempty"`
	State       string     `json:"state"` // ok, failing, unknown (never asked)
	LastOK      *time.Time `json:"lastOk,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// handleFederation shows operators and auditors the federation as this
// node sees it: the members, every token key (purpose, epoch, t, n and each
// issuer's public share) and each issuer's reachability and last error.
// Nothing here is secret.
func (n *Node) handleFederation(w http.ResponseWriter, r *http.Request) error {
	resp := federationResponse{Self: n.cfg.NodeID, Members: []MemberKey{}, Keys: []federationKey{}, Issuers: []federationIssue{}}
	if n.opt.Peers != nil {
		resp.Members = append(resp.Members, n.opt.Peers.MemberKeys()...)
	}
	var issuers []string
	if n.opt.Keyring != nil {
		for _, ks := range n.opt.Keyring.All() {
			fk := federationKey{Purpose: ks.Purpose, Epoch: ks.Epoch, T: ks.T, N: len(ks.Issuers),
				GroupKey: base64.StdEncoding.EncodeToString(ks.GroupKey), Issuers: []federationShare{},
				Share: n.opt.Keyring.Share(ks.Purpose, ks.Epoch) != nil}
			for _, ik := range ks.Issuers {
				fk.Issuers = append(fk.Issuers, federationShare{NodeID: ik.NodeID, Index: ik.Index, PublicShare: base64.StdEncoding.EncodeToString(ik.PublicShare)})
				if !slices.Contains(issuers, ik.NodeID) {
					issuers = append(issuers, ik.NodeID)
				}
			}
			resp.Keys = append(resp.Keys, fk)
		}
	}
	var err error
	if resp.Rotating, resp.Rotation, err = n.rotationWork(); err != nil {
		return fmt.Errorf("node: rotation progress: %w", err)
	}
	if resp.Rotation == nil {
		resp.Rotation = []rotationItem{}
	}
	slices.Sort(issuers)
	for _, id := range issuers {
		fi := federationIssue{NodeID: id, State: "unknown"}
		if n.opt.Peers != nil {
			fi.Agency = n.opt.Peers.Agency(id)
		}
		if id == n.cfg.NodeID {
			fi.Agency = n.cfg.Agency
		}
		if st, ok := n.issuers.get(id); ok {
			fi.State = "ok"
			if st.LastErrorAt.After(st.LastOK) {
				fi.State = "failing"
			}
			if !st.LastOK.IsZero() {
				t := st.LastOK.UTC()
				fi.LastOK = &t
			}
			if !st.LastErrorAt.IsZero() {
				t := st.LastErrorAt.UTC()
				fi.LastError, fi.LastErrorAt = st.LastError, &t
			}
		}
		resp.Issuers = append(resp.Issuers, fi)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// IssuersUnavailableMessage is the sentence of a 503 issuers_unavailable,
// which the practitioner's page shows as it is.
func IssuersUnavailableMessage(e *IssuersError) string {
	return fmt.Sprintf("Searching is unavailable just now: only %d of %d token issuers answered and %d are needed. "+
		"Records already found and lookups by key still work; try again later.", e.Answered, e.N, e.T)
}

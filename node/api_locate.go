package node

import (
	"context"
	"encoding/base64"
	"net/http"
	"sort"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
)

type locateRequest struct {
	NHSNumber string `json:"nhsNumber"`
	Purpose   string `json:"purpose"`
}

// HolderView is one agency in a locate answer.
type HolderView struct {
	NodeID   string    `json:"nodeId"`
	Agency   string    `json:"agency"`
	Category string    `json:"category"`
	Since    time.Time `json:"since"`
	// Shielded: a service that protects its patients' confidentiality
	// holds a record and is not named (NodeID and Category are empty,
	// Agency is [ShieldedService]). Ask through its broker (Broker,
	// BrokerAgency): a contact request names the broker as nodeId and
	// carries EntryKey and Shield back. Nobody but the broker can check
	// which agency it is; it is never counted as the broker's own record.
	Shielded     bool   `json:"shielded,omitempty"`
	Broker       string `json:"broker,omitempty"`
	BrokerAgency string `json:"brokerAgency,omitempty"`
	EntryKey     string `json:"entryKey,omitempty"`
	Shield       string `json:"shield,omitempty"`
}

// ShieldedService is how an answer names a shielded holder.
const ShieldedService = httpx.ShieldedService

// holderView is an opened entry as answers and notices show it.
func (n *Node) holderView(h Holding) HolderView {
	if h.Broker != "" {
		return HolderView{Agency: ShieldedService, Since: h.Since, Shielded: true, Broker: h.Broker, BrokerAgency: n.agencyName(Holding{NodeID: h.Broker}),
			EntryKey: encodeEntryKey(h.EntryPub), Shield: base64.RawURLEncoding.EncodeToString(h.Shield)}
	}
	return HolderView{NodeID: h.NodeID, Agency: n.agencyName(h), Category: shownCategory(h.Category), Since: h.Since}
}

// LocateResult is the answer of POST /v1/locate. The caller's own agency is
// never listed in Holders; SelfHolds says whether it holds a record too.
// During a key rotation's overlap every key in force is asked and the
// answers merged (an agency once); LookupKeys lists each key's lookup key,
// newest first, and LookupKey is the newest one's.
type LocateResult struct {
	Holders    []HolderView  `json:"holders"`
	SelfHolds  bool          `json:"selfHolds"`
	LookupKey  string        `json:"lookupKey"`
	LookupKeys []EpochLookup `json:"lookupKeys"`
}

// locate tokenises a canonical number for purpose (checked by the caller)
// under every key in force and returns the other agencies that hold a
// record, opened and verified in one step by the index (Index.Find), an
// agency once. Entries that fail to open or verify are dropped and
// counted. It also returns the lookup keys asked.
func (n *Node) locate(ctx context.Context, number, purpose string) (LocateResult, [][16]byte, error) {
	eks, err := n.keysInForce(ctx, purpose, []string{number})
	if err != nil {
		return LocateResult{}, nil, err
	}
	res := LocateResult{Holders: []HolderView{}, LookupKeys: make([]EpochLookup, 0, len(eks))}
	var lookups [][16]byte
	seen := map[string]bool{}
	for _, ek := range eks {
		k := ek.Keys[0]
		found, dropped, err := n.opt.Index.Find(ctx, k)
		if err != nil {
			return LocateResult{}, nil, err
		}
		n.metrics.dropped.Add(float64(dropped))
		lookups = append(lookups, k.Lookup)
		res.LookupKeys = append(res.LookupKeys, EpochLookup{Epoch: ek.Epoch, LookupKey: encodeKey(k.Lookup)})
		shieldedHere := map[string]bool{}
		for _, h := range found {
			if h.Own || h.NodeID == n.cfg.NodeID {
				res.SelfHolds = true
				continue
			}
			if h.Broker != "" {
				// Shielded holders cannot be told apart across keys:
				// each is listed under the newest key it is found
				// under, and under an older key only a broker not yet
				// seen is.
				if seen["\x00"+h.Broker] && !shieldedHere[h.Broker] {
					continue
				}
				shieldedHere[h.Broker] = true
				res.Holders = append(res.Holders, n.holderView(h))
				continue
			}
			if seen[h.NodeID] {
				continue // found under a newer key already
			}
			seen[h.NodeID] = true
			res.Holders = append(res.Holders, n.holderView(h))
		}
		for b := range shieldedHere {
			seen["\x00"+b] = true
		}
	}
	res.LookupKey = res.LookupKeys[0].LookupKey
	sort.SliceStable(res.Holders, func(i, j int) bool {
		a, b := res.Holders[i], res.Holders[j]
		if a.Shielded != b.Shielded {
			return !a.Shielded // named holders first
		}
		return a.NodeID+a.Broker < b.NodeID+b.Broker
	})
	return res, lookups, nil
}

// shownCategory is another agency's category as this node passes it on:
// a node of an older release, or a hostile one, may have published any
// string, and the callers of this API may not escape it, so anything but a
// category slug (records.ValidCategory) is shown as "".
func shownCategory(c string) string {
	if records.ValidCategory(c) {
		return c
	}
	return ""
}

func (n *Node) agencyName(h Holding) string {
	if h.Agency != "" {
		return h.Agency
	}
	if n.opt.Peers != nil {
		if a := n.opt.Peers.Agency(h.NodeID); a != "" {
			return a
		}
	}
	return h.NodeID
}

func (n *Node) handleLocate(w http.ResponseWriter, r *http.Request, req *locateRequest) error {
	if !n.purposeAllowed(req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	canon, err := n.tok.Normalize(r.Context(), req.NHSNumber)
	if err != nil {
		return errorf(http.StatusBadRequest, httpx.CodeInvalidNHSNumber, "%s", safeReason(err))
	}
	p := principalFrom(r.Context())
	res, lookups, err := n.locate(r.Context(), canon, req.Purpose)
	if err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "locate", Actor: p.Name, Purpose: req.Purpose, Count: len(res.Holders), Outcome: "ok", Subject: lookups})
	writeJSON(w, http.StatusOK, res)
	return nil
}

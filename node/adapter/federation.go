package adapter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node/port"
)

// AgentPeers is the production Peers: node-to-node JSON calls over the
// federation agent's mutually authenticated peer transport, and member
// descriptors for agency names and authorised purposes.
type AgentPeers struct{ A *federation.Agent }

// maxPeerResponse bounds a peer's answer.
const maxPeerResponse = 1 << 20

// Call implements Peers.
func (p AgentPeers) Call(ctx context.Context, nodeID, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.A.PeerURL(nodeID, path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := p.A.PeerClient().Do(req)
	if err != nil {
		return fmt.Errorf("node: call %s: %w", nodeID, err)
	}
	defer res.Body.Close()
	lr := io.LimitReader(res.Body, maxPeerResponse)
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.NewDecoder(lr).Decode(&e)
		return &port.PeerError{Status: res.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("node: call %s: bad answer: %w", nodeID, err)
	}
	return nil
}

// Agency implements Peers.
func (p AgentPeers) Agency(nodeID string) string {
	if d, ok := p.A.Descriptor(nodeID); ok {
		return d.Agency
	}
	return ""
}

// Purposes implements Peers.
func (p AgentPeers) Purposes(nodeID string) []string {
	if d, ok := p.A.Descriptor(nodeID); ok {
		return d.Purposes
	}
	return nil
}

// PeerID returns the authenticated peer of a request on the agent's peer API.
func PeerID(r *http.Request) (string, bool) {
	d, ok := federation.PeerFromContext(r.Context())
	return d.NodeID, ok
}

// MemberKeys implements port.Peers: this node and every admitted member.
func (p AgentPeers) MemberKeys() []port.MemberKey {
	self := p.A.Self()
	out := []port.MemberKey{{NodeID: self.NodeID, Agency: self.Agency, Category: self.Category, PublicKey: base64.StdEncoding.EncodeToString(self.PublicKey)}}
	for _, m := range p.A.Members() {
		out = append(out, port.MemberKey{NodeID: m.NodeID, Agency: m.Agency, Category: m.Category, PublicKey: base64.StdEncoding.EncodeToString(m.PublicKey)})
	}
	return out
}

// AgentKeyAdmin is the production KeyAdmin: DKG sessions and key records of
// the federation agent.
type AgentKeyAdmin struct{ A *federation.Agent }

// StartDKG implements port.KeyAdmin.
func (k AgentKeyAdmin) StartDKG(ctx context.Context, purpose string, epoch uint32, t int, issuers []string) (string, error) {
	cfg := dkg.Config{Purpose: purpose, Epoch: epoch, T: t}
	for i, id := range issuers {
		cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: id, Index: uint16(i + 1)})
	}
	id, err := k.A.StartDKG(ctx, cfg)
	if err != nil {
		if errors.Is(err, dkg.ErrInvalidConfig) || errors.Is(err, federation.ErrDKGRefused) {
			return "", fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
		}
		return "", err
	}
	return id.String(), nil
}

// DKGSessions implements port.KeyAdmin.
func (k AgentKeyAdmin) DKGSessions() any { return k.A.DKGSessions() }

// DKGResult implements port.KeyAdmin.
func (k AgentKeyAdmin) DKGResult(session string) ([]byte, error) {
	id, err := dkg.ParseSessionID(session)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
	}
	ks, err := k.A.DKGResult(id)
	if err != nil {
		// Unknown, aborted or unfinished: the operator's to know.
		return nil, fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
	}
	return federation.EncodeDKGResult(ks), nil
}

// AdoptKeyRecords implements port.KeyAdmin.
func (k AgentKeyAdmin) AdoptKeyRecords(data []byte) (int, error) {
	n, err := k.A.AdoptKeyRecords("the uploaded key records", data)
	if err != nil {
		return n, fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
	}
	return n, nil
}

// StartReshare implements port.KeyAdmin.
func (k AgentKeyAdmin) StartReshare(ctx context.Context, purpose string, epoch uint32, t int, issuers []string) (string, error) {
	cfg := dkg.Config{Purpose: purpose, Epoch: epoch, T: t}
	for i, id := range issuers {
		cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: id, Index: uint16(i + 1)})
	}
	id, err := k.A.StartReshare(ctx, cfg)
	if err != nil {
		if errors.Is(err, dkg.ErrInvalidConfig) || errors.Is(err, federation.ErrDKGRefused) {
			return "", fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
		}
		return "", err
	}
	return id.String(), nil
}

// ApproveReshare implements port.KeyAdmin.
func (k AgentKeyAdmin) ApproveReshare(session string) error {
	id, err := dkg.ParseSessionID(session)
	if err != nil {
		return fmt.Errorf("%w: %w", port.ErrKeyAdmin, err)
	}
	k.A.ApproveReshare(id)
	return nil
}

// EraseOldShares implements port.KeyAdmin.
func (k AgentKeyAdmin) EraseOldShares(purpose string, epoch uint32) (int, error) {
	files, err := k.A.EraseOldShares(purpose, epoch)
	return len(files), err
}

var _ port.KeyAdmin = AgentKeyAdmin{}

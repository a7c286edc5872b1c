package node

import (
	"context"
	"fmt"
	"slices"
)

// Key rotation: the overlap window.
//
// A purpose may have more than one key in force at once: after a rotation
// (a new epoch's key record is adopted) and until the old epoch's record
// is retired (its RetireAt passes), both are in force. Entries are
// published under the newest key by the outbox's background pass, so
// during the window an entry may be found under the old key, the new one
// or both. Reads therefore ask every key in force and merge the answers
// (an agency found under two keys is listed once): POST /v1/locate, a
// contact request that names the number, and the page (the evaluate
// answer lists the epochs in force; the page evaluates under each).

// epochsInForce returns the epochs of purpose's keys in force, newest
// first (empty when the federation has none).
func (n *Node) epochsInForce(purpose string) []uint32 {
	if n.opt.Keyring == nil {
		return nil
	}
	var out []uint32
	for _, ks := range n.opt.Keyring.All() {
		if ks.Purpose == purpose && !slices.Contains(out, ks.Epoch) {
			out = append(out, ks.Epoch)
		}
	}
	slices.SortFunc(out, func(a, b uint32) int { return cmpEpoch(b, a) })
	return out
}

func cmpEpoch(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pinnedEvaluator is the node's evaluator with "the current key" pinned to
// one epoch, so that the tokenizer (which asks for the current key) makes
// tokens under an older key in force.
type pinnedEvaluator struct {
	ev    Evaluator
	epoch uint32
}

func (p pinnedEvaluator) KeySet(ctx context.Context, purpose string, _ uint32) (KeySet, error) {
	return p.ev.KeySet(ctx, purpose, p.epoch)
}

func (p pinnedEvaluator) EvaluatePartials(ctx context.Context, purpose string, _ uint32, blinded [][]byte) ([]Partial, error) {
	return p.ev.EvaluatePartials(ctx, purpose, p.epoch, blinded)
}

// epochKeys are numbers' keys under one epoch's key.
type epochKeys struct {
	Epoch uint32 // 0: the current key, when the keyring lists none
	Keys  []Keys
}

// keysInForce tokenises canonical numbers for purpose under every key in
// force, newest first. Outside an overlap that is one key, through the
// coalescer as before. If any key cannot be used the whole call fails: an
// answer from one epoch only could hide a holder.
func (n *Node) keysInForce(ctx context.Context, purpose string, nums []string) ([]epochKeys, error) {
	epochs := n.epochsInForce(purpose)
	if len(epochs) <= 1 {
		ks, err := n.tok.Keys(ctx, purpose, nums)
		n.noteIssuer(err)
		if err != nil {
			return nil, err
		}
		var e uint32
		if len(epochs) == 1 {
			e = epochs[0]
		}
		return []epochKeys{{Epoch: e, Keys: ks}}, nil
	}
	out := make([]epochKeys, 0, len(epochs))
	for _, e := range epochs {
		ks, err := n.tok.Tokenizer.Keys(ctx, pinnedEvaluator{ev: nodeEvaluator{n}, epoch: e}, purpose, nums)
		n.noteIssuer(err)
		if err != nil {
			return nil, err
		}
		if len(ks) != len(nums) {
			return nil, fmt.Errorf("node: tokenise %s epoch %d: %d keys for %d numbers", purpose, e, len(ks), len(nums))
		}
		out = append(out, epochKeys{Epoch: e, Keys: ks})
	}
	return out, nil
}

// EpochLookup is a lookup key under one epoch's key, in a locate answer.
type EpochLookup struct {
	Epoch     uint32 `json:"epoch"`
	LookupKey string `json:"lookupKey"`
}

// contactLookup is the lookup key a contact request for a number names to
// holder: during an overlap, the key (newest first) under which this
// node's replica shows holder's entry, since a holder that has not yet
// published under the newest key knows its record only by the older one;
// the newest key when the replica shows none.
func (n *Node) contactLookup(ctx context.Context, purpose, number, holder string) ([16]byte, error) {
	eks, err := n.keysInForce(ctx, purpose, []string{number})
	if err != nil {
		return [16]byte{}, err
	}
	if len(eks) > 1 {
		for _, ek := range eks {
			found, _, err := n.opt.Index.Find(ctx, ek.Keys[0])
			if err != nil {
				return [16]byte{}, err
			}
			if slices.ContainsFunc(found, func(h Holding) bool { return h.NodeID == holder }) {
				return ek.Keys[0].Lookup, nil
			}
		}
	}
	return eks[0].Keys[0].Lookup, nil
}

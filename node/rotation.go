package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
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
	for i, e := range epochs {
		ks, err := n.tok.Tokenizer.Keys(ctx, pinnedEvaluator{ev: nodeEvaluator{n}, epoch: e}, purpose, nums)
		n.noteIssuer(err)
		if i > 0 && olderKeyGone(err) {
			continue
		}
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

// olderKeyGone reports whether an older key in force could not be used
// because it is being retired: this node no longer has it (unknown_epoch),
// or its issuers no longer evaluate it (they saw the retirement first and
// erased their shares, so too few answer). The newer keys' answer is given
// then: retirement comes after the pass has published everything under
// the newest key. (An outage of the older key's issuers alone during the
// overlap is answered the same way; see docs/DESIGN.md, key rotation.)
func olderKeyGone(err error) bool {
	var ae *apiError
	return errors.Is(err, ErrIssuerUnavailable) || (errors.As(err, &ae) && ae.Code == httpx.CodeUnknownEpoch)
}

// EpochLookup is a lookup key under one epoch's key, in a locate answer.
type EpochLookup struct {
	Epoch     uint32 `json:"epoch"`
	LookupKey string `json:"lookupKey"`
}

// contactLookup is the lookup key a contact request for a number names to
// the holder that holder matches: during an overlap, the key (newest first) under which this
// node's replica shows holder's entry, since a holder that has not yet
// published under the newest key knows its record only by the older one;
// the newest key when the replica shows none.
func (n *Node) contactLookup(ctx context.Context, purpose, number string, holder func(Holding) bool) ([16]byte, error) {
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
			if slices.ContainsFunc(found, holder) {
				return ek.Keys[0].Lookup, nil
			}
		}
	}
	return eks[0].Keys[0].Lookup, nil
}

// keysNow is the token keys in force for the node's purposes at one
// moment, as the outbox publishes under them.
type keysNow struct {
	purposes []string
	cur      map[string]uint32   // purpose → its newest epoch in force (absent: none)
	inForce  map[string][]uint32 // purpose → every epoch in force, newest first
}

func (n *Node) keysNow() keysNow {
	k := keysNow{purposes: n.cfg.Purposes, cur: map[string]uint32{}, inForce: map[string][]uint32{}}
	if n.opt.Keyring == nil {
		return k
	}
	for _, p := range n.cfg.Purposes {
		if ks, err := n.opt.Keyring.KeySet(p, 0); err == nil {
			k.cur[p] = ks.Epoch
			k.inForce[p] = n.epochsInForce(p)
		}
	}
	return k
}

// stored returns a record's keys under every purpose's current key from
// what it was published with, when nothing needs tokenising: the record is
// unchanged since (the same version) and was published under every
// current key already — a pass after an old key was retired. Nil
// otherwise.
func (k keysNow) stored(st records.State) map[string]Keys {
	if !st.HasPublished || st.Published.Version != st.Record.Version {
		return nil
	}
	out := make(map[string]Keys, len(k.purposes))
	for _, p := range k.purposes {
		e := k.cur[p]
		i := slices.IndexFunc(st.Published.Keys, func(pk records.PubKey) bool { return pk.Purpose == p && pk.Epoch == e })
		if e == 0 || i < 0 {
			return nil
		}
		out[p] = Keys{Lookup: st.Published.Keys[i].Lookup, Seal: st.Published.Keys[i].Seal}
	}
	return out
}

// tokeniseAt returns, per configured purpose, the numbers' keys under the
// purpose's current key as keys names it (pinned to that epoch, so that
// the epoch recorded with the keys is the one they were made under even if
// a newer key is adopted meanwhile).
func (n *Node) tokeniseAt(ctx context.Context, keys keysNow, nums []string) (map[string][]Keys, error) {
	out := make(map[string][]Keys, len(n.cfg.Purposes))
	for _, p := range n.cfg.Purposes {
		var ks []Keys
		var err error
		if e := keys.cur[p]; e != 0 {
			ks, err = n.tok.Tokenizer.Keys(ctx, pinnedEvaluator{ev: nodeEvaluator{n}, epoch: e}, p, nums)
		} else {
			ks, err = n.tok.Keys(ctx, p, nums)
		}
		n.noteIssuer(err)
		if err != nil {
			return nil, fmt.Errorf("tokenise for %s: %w", p, err)
		}
		if len(ks) != len(nums) {
			return nil, fmt.Errorf("tokenise for %s: %d keys for %d numbers", p, len(ks), len(nums))
		}
		out[p] = ks
	}
	return out, nil
}

// publishUnder publishes record r (whose stored state is st) under ks,
// its keys under every purpose's current key, and settles the entries it
// was published under before:
//   - under an older key still in force (a rotation's overlap), kept, and
//     published again if the record changed;
//   - under a retired key, or a purpose the node no longer has, withdrawn
//     (with the stored keys: no issuer is needed);
//   - when the record's number changed (its current-key lookup differs),
//     all withdrawn;
//   - of an unknown epoch (stored before epochs were kept per key), kept
//     during an overlap and withdrawn after it.
//
// It returns the published state to record and the lookup keys it
// published or withdrew under.
func (n *Node) publishUnder(ctx context.Context, r records.Record, st records.State, ks map[string]Keys, keys keysNow, now time.Time, gen uint32) (records.Published, [][16]byte, error) {
	same := st.HasPublished && st.Published.Version == r.Version
	pub := records.Published{Epoch: gen, Version: r.Version, Expires: n.entryExpiry(r, now)}
	if pub.Expires.Before(r.RetainUntil) {
		pub.RefreshAt = pub.Expires.Add(-n.cfg.EntryLifetime.D() / 4)
	}
	if same {
		// The same version under more keys: its entries expire together,
		// and are refreshed together (a new version).
		pub.Expires, pub.RefreshAt = st.Published.Expires, st.Published.RefreshAt
	}
	var old []records.PubKey
	if st.HasPublished {
		old = st.Published.Keys
	}
	published := func(l [16]byte) bool {
		return same && slices.ContainsFunc(old, func(o records.PubKey) bool { return o.Lookup == l })
	}
	moved := false // the number changed: no old entry is this record's any more
	for _, o := range old {
		if k, ok := ks[o.Purpose]; ok && o.Epoch != 0 && o.Epoch == keys.cur[o.Purpose] && k.Lookup != o.Lookup {
			moved = true
		}
	}
	var subject [][16]byte
	for _, p := range n.cfg.Purposes {
		k, ok := ks[p]
		if !ok {
			return pub, subject, fmt.Errorf("publish %q: no key for %s", r.LocalID, p)
		}
		if !published(k.Lookup) {
			if err := n.opt.Index.Publish(ctx, k, r.Category, r.Version, r.Created, pub.Expires); err != nil {
				return pub, subject, fmt.Errorf("publish %q: %w", r.LocalID, err)
			}
			n.metrics.published.Inc()
			subject = append(subject, k.Lookup)
		}
		pub.Keys = append(pub.Keys, records.PubKey{Purpose: p, Epoch: keys.cur[p], Lookup: k.Lookup, Seal: k.Seal})
	}
	tombstone := pub.Expires
	if st.HasPublished && st.Published.Expires.After(tombstone) {
		tombstone = st.Published.Expires
	}
	for _, o := range old {
		if slices.ContainsFunc(pub.Keys, func(k records.PubKey) bool { return k.Lookup == o.Lookup }) {
			continue
		}
		inForce := keys.inForce[o.Purpose]
		keep := !moved && slices.Contains(n.cfg.Purposes, o.Purpose) &&
			((o.Epoch == 0 && len(inForce) > 1) || (o.Epoch != 0 && o.Epoch != keys.cur[o.Purpose] && slices.Contains(inForce, o.Epoch)))
		k := Keys{Lookup: o.Lookup, Seal: o.Seal}
		switch {
		case keep && !same:
			if err := n.opt.Index.Publish(ctx, k, r.Category, r.Version, r.Created, pub.Expires); err != nil {
				return pub, subject, fmt.Errorf("publish %q under an older key: %w", r.LocalID, err)
			}
			n.metrics.published.Inc()
			subject = append(subject, o.Lookup)
			fallthrough
		case keep:
			pub.Keys = append(pub.Keys, o)
		default:
			if err := n.opt.Index.Withdraw(ctx, k, r.Version, tombstone); err != nil {
				return pub, subject, fmt.Errorf("withdraw %q under a retired key: %w", r.LocalID, err)
			}
			n.metrics.withdrawn.Inc()
			subject = append(subject, o.Lookup)
		}
	}
	return pub, subject, nil
}

var descRotation = prometheus.NewDesc(MetricRotation,
	"A key rotation's work left at this node: records not yet published under the purpose's newest key (action publish, at that epoch), and records whose entries under a retired key are not yet withdrawn (action withdraw, at the retired epoch). Read from the store while a rotation is under way (two keys of a purpose in force, or a pass running or due); 0 otherwise.",
	[]string{"purpose", "epoch", "action"}, nil)

// rotationGauges reads the rotation's progress at scrape time.
type rotationGauges struct{ n *Node }

func (rotationGauges) Describe(ch chan<- *prometheus.Desc) { ch <- descRotation }

func (g rotationGauges) Collect(ch chan<- prometheus.Metric) {
	_, work, err := g.n.rotationWork()
	if err != nil {
		return
	}
	for _, w := range work {
		ch <- prometheus.MustNewConstMetric(descRotation, prometheus.GaugeValue, float64(w.Pending), w.Purpose, strconv.FormatUint(uint64(w.Epoch), 10), w.Action)
	}
}

// rotationItem is one line of a rotation's work left at this node.
type rotationItem struct {
	Purpose string `json:"purpose"`
	Epoch   uint32 `json:"epoch"`
	// Action is "publish" (records not yet published under the purpose's
	// newest key, at that epoch) or "withdraw" (records whose entries
	// under a retired key, at that epoch, are not yet withdrawn).
	Action  string `json:"action"`
	Pending int    `json:"pending"`
}

// rotationWork says whether a rotation is under way at this node (a pass
// runs or is due, or two keys of a purpose are in force) and, if so, the
// work left, read from the records store; otherwise each purpose's newest
// key with nothing pending. /metrics and GET /v1/federation show it.
func (n *Node) rotationWork() (rotating bool, work []rotationItem, err error) {
	keys := n.keysNow()
	type label struct {
		purpose string
		epoch   uint32
		action  string
	}
	counts := map[label]int{}
	for p, e := range keys.cur {
		counts[label{p, e, "publish"}] = 0
	}
	rotating = n.pub.passing.Load() || (n.started.Load() && n.pub.genSeen.Load() != n.keyGeneration())
	for _, inForce := range keys.inForce {
		rotating = rotating || len(inForce) > 1
	}
	if rotating {
		err = n.records.ForEachPublished(func(_ string, pub records.Published) error {
			for p, e := range keys.cur {
				if !slices.ContainsFunc(pub.Keys, func(k records.PubKey) bool { return k.Purpose == p && k.Epoch == e }) {
					counts[label{p, e, "publish"}]++
				}
			}
			retired := map[label]bool{}
			for _, k := range pub.Keys {
				if k.Epoch != 0 && slices.Contains(keys.purposes, k.Purpose) && !slices.Contains(keys.inForce[k.Purpose], k.Epoch) {
					retired[label{k.Purpose, k.Epoch, "withdraw"}] = true
				}
			}
			for l := range retired {
				counts[l]++
			}
			return nil
		})
		if err != nil {
			return false, nil, err
		}
	}
	for l, c := range counts {
		work = append(work, rotationItem{Purpose: l.purpose, Epoch: l.epoch, Action: l.action, Pending: c})
	}
	slices.SortFunc(work, func(a, b rotationItem) int {
		return cmp.Or(strings.Compare(a.Purpose, b.Purpose), cmp.Compare(b.Epoch, a.Epoch), strings.Compare(a.Action, b.Action))
	})
	return rotating, work, nil
}

// subjectLookups is a number's lookup keys for a subject access request:
// under every key in force of each of the node's purposes. Events recorded
// under a key retired since are not found by them (the key is gone; see
// docs/DESIGN.md, key rotation).
func (n *Node) subjectLookups(ctx context.Context, canon string) ([][16]byte, error) {
	var out [][16]byte
	for _, p := range n.cfg.Purposes {
		eks, err := n.keysInForce(ctx, p, []string{canon})
		if err != nil {
			return nil, fmt.Errorf("tokenise for %s: %w", p, err)
		}
		for _, ek := range eks {
			out = append(out, ek.Keys[0].Lookup)
		}
	}
	return out, nil
}

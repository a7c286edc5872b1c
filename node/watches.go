package node

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/watches"
)

// Stored watches: a practitioner's watch held by the node for the user,
// not for one WebSocket connection (watch.go). It survives reloads, new
// tabs and node restarts until Config.WatchExpiry after it was started (or
// last renewed) or until the practitioner stops it.
//
//   - POST /v1/watches {"purpose","lookupKeys"} starts one (201), or, when
//     the user already watches one of those keys for that purpose, renews
//     that watch and adds the other keys to it (200): a search of the same
//     person during a key rotation thus adds the new key to the watch.
//     At most Config.WatchesPerUser watches per user (429
//     too_many_watches), MaxWatchKeys keys per watch (400 too_many_keys).
//   - GET /v1/watches lists the caller's own watches with their notices;
//     DELETE /v1/watches/{id} stops one; POST /v1/watches/{id}/seen
//     {"seq"} marks its notices up to seq seen. Another user's watch is
//     404 watch_not_found, as one that does not exist.
//   - Every change under a watched key is stored as a notice (its time,
//     its watch, at most maxWatchNotices per watch, the oldest going
//     first) before it is sent to each of the user's open /v1/watch
//     sockets; a page that was closed shows the stored ones when it
//     returns. The notices go with their watch.
//   - A sweep (watchExpiryLoop, on the node's clock) deletes expired
//     watches with their notices.
//
// Audit: watch-start, watch-stop, watch-expire, watch-seen, and notify for
// each notice sent. The node sees lookup keys only; the page keeps the
// number's last four digits in the browser.

// maxWatchNotices bounds the notices kept per stored watch.
const maxWatchNotices = 50

// watchSweepEvery is how often expired watches are looked for; expiry is
// compared on the node's clock (Options.Now).
const watchSweepEvery = time.Minute

// watchSweepBatch bounds the watches one transaction of the sweep deletes.
const watchSweepBatch = 256

// storedIndex is the index watches over the keys of stored watches: per
// key, the watches (id → user) that name it, and one index watch.
type storedIndex struct {
	mu     sync.Mutex
	byKey  map[[16]byte]map[string]string
	cancel map[[16]byte]func()
}

// subscribe makes sure every key of w has an index watch that knows w.
func (n *Node) subscribe(w StoredWatch) {
	s := &n.stored
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey, s.cancel = make(map[[16]byte]map[string]string), make(map[[16]byte]func())
	}
	for _, k := range w.Keys {
		m := s.byKey[k]
		if m == nil {
			m = make(map[string]string)
			s.byKey[k] = m
		}
		m[w.ID] = w.User
		if s.cancel[k] == nil {
			// Under the lock, as the hub does: the index's Watch does not
			// call back.
			s.cancel[k] = n.opt.Index.Watch([][16]byte{k}, n.onStoredEvent)
		}
	}
}

// unsubscribe forgets w, ending the index watches no other watch needs.
func (n *Node) unsubscribe(w StoredWatch) {
	s := &n.stored
	s.mu.Lock()
	var cancels []func()
	for _, k := range w.Keys {
		m := s.byKey[k]
		delete(m, w.ID)
		if len(m) == 0 {
			delete(s.byKey, k)
			if c := s.cancel[k]; c != nil {
				cancels = append(cancels, c)
				delete(s.cancel, k)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// cancelAll ends every index watch (Shutdown); each cancel waits for a
// notice being stored.
func (s *storedIndex) cancelAll() {
	s.mu.Lock()
	cs := s.cancel
	s.byKey, s.cancel = nil, nil
	s.mu.Unlock()
	for _, c := range cs {
		c()
	}
}

// watchStored watches the keys of every stored watch (at New).
func (n *Node) watchStored() error {
	all, err := n.watches.All()
	if err != nil {
		return err
	}
	for _, w := range all {
		n.subscribe(w)
	}
	return nil
}

// onStoredEvent stores a change under a stored watch's key as a notice of
// each watch naming it, then sends it to that user's open sockets.
func (n *Node) onStoredEvent(ev IndexEvent) {
	n.stored.mu.Lock()
	ids := make(map[string]string, len(n.stored.byKey[ev.Lookup]))
	for id, u := range n.stored.byKey[ev.Lookup] {
		ids[id] = u
	}
	n.stored.mu.Unlock()
	typ := watches.Involved
	if ev.Deleted {
		typ = watches.Withdrawn
	}
	now := n.opt.Now().UTC()
	for id, user := range ids {
		nt, err := n.watches.AddNotice(WatchNotice{WatchID: id, Type: typ, LookupKey: ev.Lookup, Entry: ev.Entry, At: now}, maxWatchNotices)
		if errors.Is(err, ErrWatchNotFound) {
			continue // stopped or expired meanwhile
		}
		if err != nil {
			n.log.Error("storing a watch notice failed", "watch", id, "err", err)
			continue
		}
		n.hub.toUser(user, liveNotice(nt))
		n.audit(n.ctxBackground(), AuditEvent{Action: "notify", Actor: user, Count: 1, Outcome: "ok", Subject: [][16]byte{ev.Lookup}})
	}
}

func liveNotice(nt WatchNotice) Notice {
	at := nt.At
	return Notice{Type: nt.Type, LookupKey: encodeKey(nt.LookupKey), Entry: base64.StdEncoding.EncodeToString(nt.Entry), WatchID: nt.WatchID, Seq: nt.Seq, At: &at}
}

// watchExpiryLoop deletes expired watches every watchSweepEvery until ctx
// ends.
func (n *Node) watchExpiryLoop(ctx context.Context) {
	t := time.NewTicker(watchSweepEvery)
	defer t.Stop()
	for {
		if _, err := n.sweepWatches(ctx); err != nil {
			n.log.Error("watch expiry sweep failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepWatches deletes the watches expired at the node's clock, with their
// notices, audits each and returns how many went.
func (n *Node) sweepWatches(ctx context.Context) (int, error) {
	total := 0
	for {
		gone, err := n.watches.DeleteExpired(n.opt.Now(), watchSweepBatch)
		if err != nil {
			return total, err
		}
		for _, w := range gone {
			n.unsubscribe(w)
			n.audit(ctx, AuditEvent{Action: "watch-expire", Actor: "node:" + n.cfg.NodeID, Purpose: w.Purpose, Count: len(w.Keys), Outcome: "ok", Subject: w.Keys})
		}
		total += len(gone)
		if len(gone) < watchSweepBatch {
			return total, nil
		}
	}
}

// watchCreate is the body of POST /v1/watches.
type watchCreate struct {
	Purpose    string   `json:"purpose"`
	LookupKeys []string `json:"lookupKeys"`
}

// watchSeen is the body of POST /v1/watches/{id}/seen.
type watchSeen struct {
	Seq uint64 `json:"seq"`
}

// WatchView is a stored watch as the API shows it to its user. It carries
// no lookup key (Keys counts them): the page names the person from its own
// storage by the watch's id, and the answer refers to nobody.
type WatchView struct {
	ID      string            `json:"id"`
	Purpose string            `json:"purpose"`
	Keys    int               `json:"keys"`
	Started time.Time         `json:"started"`
	Expires time.Time         `json:"expires"`
	Notices []WatchNoticeView `json:"notices"`
	// Unseen counts the notices not yet marked seen.
	Unseen int `json:"unseen"`
}

// WatchNoticeView is one stored notice: the change (involved, withdrawn),
// the sealed entry (base64), when, and whether seen.
type WatchNoticeView struct {
	Seq   uint64    `json:"seq"`
	Type  string    `json:"type"`
	Entry string    `json:"entry,omitempty"`
	At    time.Time `json:"at"`
	Seen  bool      `json:"seen"`
}

func (n *Node) watchView(w StoredWatch) (WatchView, error) {
	v := WatchView{ID: w.ID, Purpose: w.Purpose, Keys: len(w.Keys), Started: w.Started, Expires: w.Expires, Notices: []WatchNoticeView{}}
	nts, err := n.watches.Notices(w.ID)
	if err != nil {
		return v, err
	}
	for _, nt := range nts {
		nv := WatchNoticeView{Seq: nt.Seq, Type: nt.Type, At: nt.At, Seen: nt.Seen}
		if len(nt.Entry) > 0 {
			nv.Entry = base64.StdEncoding.EncodeToString(nt.Entry)
		}
		if !nt.Seen {
			v.Unseen++
		}
		v.Notices = append(v.Notices, nv)
	}
	return v, nil
}

// handleWatchCreate starts (201) or renews and extends (200) a stored
// watch; refusals write nothing.
func (n *Node) handleWatchCreate(w http.ResponseWriter, r *http.Request, req *watchCreate) error {
	p := principalFrom(r.Context())
	if !n.purposeAllowed(req.Purpose) {
		return errorf(http.StatusForbidden, httpx.CodePurpose, "this node is not authorised for that purpose")
	}
	if len(req.LookupKeys) == 0 {
		return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "a watch names at least one lookup key (lookupKeys)")
	}
	if len(req.LookupKeys) > MaxWatchKeys {
		return errorf(http.StatusBadRequest, httpx.CodeTooManyKeys, "a watch may name at most %d lookup keys", MaxWatchKeys)
	}
	var keys [][16]byte
	seen := map[[16]byte]bool{}
	for _, s := range req.LookupKeys {
		k, aerr := decodeLookupKey(s)
		if aerr != nil {
			return aerr
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	now := n.opt.Now().UTC()
	sw := StoredWatch{ID: watches.NewID(), User: p.Name, Purpose: req.Purpose, Keys: keys, Started: now, Expires: now.Add(n.cfg.WatchExpiry.D())}
	got, created, err := n.watches.Create(sw, n.cfg.WatchesPerUser, MaxWatchKeys)
	switch {
	case errors.Is(err, ErrWatchLimit):
		return errorf(http.StatusTooManyRequests, httpx.CodeTooManyWatches, "you keep %d watches at this node, the most allowed; stop one first", n.cfg.WatchesPerUser)
	case errors.Is(err, ErrWatchKeys):
		return errorf(http.StatusBadRequest, httpx.CodeTooManyKeys, "a watch may name at most %d lookup keys", MaxWatchKeys)
	case err != nil:
		return err
	}
	n.subscribe(got)
	n.audit(r.Context(), AuditEvent{Action: "watch-start", Actor: p.Name, Purpose: got.Purpose, Count: len(keys), Outcome: "ok", Subject: keys})
	v, err := n.watchView(got)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
	return nil
}

// handleWatchList lists the caller's own stored watches, oldest first.
func (n *Node) handleWatchList(w http.ResponseWriter, r *http.Request) error {
	p := principalFrom(r.Context())
	ws, err := n.watches.List(p.Name)
	if err != nil {
		return err
	}
	out := struct {
		Watches []WatchView `json:"watches"`
	}{make([]WatchView, 0, len(ws))}
	for _, sw := range ws {
		v, err := n.watchView(sw)
		if err != nil {
			return err
		}
		out.Watches = append(out.Watches, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ownWatch returns the caller's watch named in the path; another user's is
// not found, as one that does not exist.
func (n *Node) ownWatch(r *http.Request) (StoredWatch, error) {
	p := principalFrom(r.Context())
	notFound := errorf(http.StatusNotFound, httpx.CodeWatchNotFound, "you have no such watch")
	id := r.PathValue("id")
	if !watches.ValidID(id) {
		return StoredWatch{}, notFound
	}
	sw, err := n.watches.Get(id)
	if errors.Is(err, ErrWatchNotFound) || err == nil && sw.User != p.Name {
		return StoredWatch{}, notFound
	}
	return sw, err
}

// handleWatchStop stops one of the caller's watches (204), deleting its
// notices.
func (n *Node) handleWatchStop(w http.ResponseWriter, r *http.Request) error {
	sw, err := n.ownWatch(r)
	if err != nil {
		return err
	}
	if _, err := n.watches.Delete(sw.ID); errors.Is(err, ErrWatchNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeWatchNotFound, "you have no such watch")
	} else if err != nil {
		return err
	}
	n.unsubscribe(sw)
	n.audit(r.Context(), AuditEvent{Action: "watch-stop", Actor: sw.User, Purpose: sw.Purpose, Count: len(sw.Keys), Outcome: "ok", Subject: sw.Keys})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleWatchSeen marks the caller's watch's notices up to seq seen (204).
func (n *Node) handleWatchSeen(w http.ResponseWriter, r *http.Request, req *watchSeen) error {
	sw, err := n.ownWatch(r)
	if err != nil {
		return err
	}
	if err := n.watches.MarkSeen(sw.ID, req.Seq); errors.Is(err, ErrWatchNotFound) {
		return errorf(http.StatusNotFound, httpx.CodeWatchNotFound, "you have no such watch")
	} else if err != nil {
		return err
	}
	n.audit(r.Context(), AuditEvent{Action: "watch-seen", Actor: sw.User, Purpose: sw.Purpose, Outcome: "ok", Subject: sw.Keys})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package node

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// WebSocket limits: one writer goroutine per connection, a read limit,
// ping/pong and deadlines, an origin allow-list (see docs/DESIGN.md, "Bound
// everything that crosses a wire").
const (
	wsReadLimit    = 4 << 10
	wsWriteTimeout = 10 * time.Second
	wsPongWait     = 60 * time.Second
	wsPingEvery    = 25 * time.Second
	wsSendQueue    = 64
	// MaxWatchKeys bounds the lookup keys one connection watches in its
	// life: those named in the handshake's query and those sent after.
	MaxWatchKeys = 64
)

// Notice is one message to a watcher.
type Notice struct {
	// Type: involved, withdrawn (under a watched key), match (a new entry
	// under one of this node's own lookup keys), contact-request (to all
	// staff: a request this node received, new or newly decided),
	// contact-answer (to the practitioner who asked: the holder's
	// decision), watching (acknowledgement), error.
	Type      string       `json:"type"`
	LookupKey string       `json:"lookupKey,omitempty"`
	Entry     string       `json:"entry,omitempty"`
	LocalID   string       `json:"localId,omitempty"`
	Holder    *HolderView  `json:"holder,omitempty"`
	Contact   *ContactView `json:"contact,omitempty"`
	Message   string       `json:"message,omitempty"`
	// WatchID, Seq and At: on a notice under a stored watch
	// (watches.go), the watch it belongs to, its number there and when
	// the node saw the change; the same notice is kept in the store.
	WatchID string     `json:"watchId,omitempty"`
	Seq     uint64     `json:"seq,omitempty"`
	At      *time.Time `json:"at,omitempty"`
}

// clientMsg is what a watcher sends: {"watch": "<lookupKey>"} or
// {"unwatch": "<lookupKey>"}.
type clientMsg struct {
	Watch   string `json:"watch,omitempty"`
	Unwatch string `json:"unwatch,omitempty"`
}

type watcher struct {
	user string
	send chan Notice
	done chan struct{}
	once sync.Once
	// opened and last (unix nanoseconds of the node's clock) are when the
	// watch opened and when a message last went either way: the idle
	// timeout and the lifetime are measured from them (see wsWriter).
	opened int64
	last   atomic.Int64
	// why says why the node closed the watch (the close frame's reason).
	why atomic.Value

	// keys watched; guarded by hub.mu
	keys map[[16]byte]bool
	// seen: every key this connection ever watched, guarded by hub.mu. A
	// key costs a slot and an audit line once per connection, so that
	// watching and unwatching in a loop neither escapes MaxWatchKeys nor
	// floods the audit log.
	seen map[[16]byte]bool
}

func (w *watcher) touch(now time.Time) { w.last.Store(now.UnixNano()) }

// end stops the watch for a reason told to the client.
func (w *watcher) end(why string) {
	w.why.CompareAndSwap(nil, why)
	w.stop()
}

func (w *watcher) stop() { w.once.Do(func() { close(w.done) }) }

// hub fans index events out to watchers.
type hub struct {
	n      *Node
	mu     sync.Mutex
	all    map[*watcher]bool
	byUser map[string]int
	byKey  map[[16]byte]map[*watcher]bool
	// idx holds one index watch per watched key.
	idx    map[[16]byte]func()
	closed bool
	wg     sync.WaitGroup
	// checkEvery is how often a watch's idle time and age are compared
	// with Config.WatchIdle and WatchLifetime (on the node's clock); tests
	// shorten it before the first watch opens.
	checkEvery time.Duration
}

func newHub(n *Node) *hub {
	return &hub{n: n, all: make(map[*watcher]bool), byUser: make(map[string]int), checkEvery: 15 * time.Second, byKey: make(map[[16]byte]map[*watcher]bool), idx: make(map[[16]byte]func())}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all)
}

// add takes a slot for w within the caps (Config.WatchersPerUser,
// WatchersPerNode), before the handshake is answered: a refusal is a JSON
// error and writes nothing.
func (h *hub) add(w *watcher) *apiError {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return errorf(http.StatusServiceUnavailable, httpx.CodeNotReady, "the node is stopping")
	case h.byUser[w.user] >= h.n.cfg.WatchersPerUser:
		return errorf(http.StatusTooManyRequests, httpx.CodeTooManyWatches, "you have %d watches open at this node, the most allowed; close one first", h.n.cfg.WatchersPerUser)
	case len(h.all) >= h.n.cfg.WatchersPerNode:
		return errorf(http.StatusServiceUnavailable, httpx.CodeTooManyWatches, "this node has %d watches open, the most it allows; try again later", h.n.cfg.WatchersPerNode)
	}
	h.all[w] = true
	h.byUser[w.user]++
	// The connection's reader and writer are counted now, under the lock
	// that close takes before it waits, so that a handshake in flight
	// during Shutdown is waited for rather than racing the wait.
	h.wg.Add(2)
	return nil
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	if !h.all[w] {
		h.mu.Unlock()
		return
	}
	delete(h.all, w)
	if h.byUser[w.user]--; h.byUser[w.user] <= 0 {
		delete(h.byUser, w.user)
	}
	var cancels []func()
	for k := range w.keys {
		if m := h.byKey[k]; m != nil {
			delete(m, w)
			if len(m) == 0 {
				delete(h.byKey, k)
				if c := h.idx[k]; c != nil {
					cancels = append(cancels, c)
					delete(h.idx, k)
				}
			}
		}
	}
	h.mu.Unlock()
	for _, c := range cancels {
		c()
	}
}

// watch starts (on) or stops watching k for w. Starting reports whether
// the key is within the connection's MaxWatchKeys and whether it is new to
// the connection (first: to be audited).
func (h *hub) watch(w *watcher, k [16]byte, on bool) (ok, first bool) {
	h.mu.Lock()
	if on {
		if h.closed || len(w.seen) >= MaxWatchKeys && !w.seen[k] {
			h.mu.Unlock()
			return false, false
		}
		first = !w.seen[k]
		w.seen[k] = true
		w.keys[k] = true
		m := h.byKey[k]
		if m == nil {
			m = make(map[*watcher]bool)
			h.byKey[k] = m
		}
		m[w] = true
		if h.idx[k] == nil {
			// Registered under the lock so that two watchers of a new key
			// make one index watch; the index's Watch does not call back.
			h.idx[k] = h.n.opt.Index.Watch([][16]byte{k}, h.n.onWatchedEvent)
		}
		h.mu.Unlock()
		return true, first
	}
	delete(w.keys, k)
	var cancel func()
	if m := h.byKey[k]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(h.byKey, k)
			cancel = h.idx[k]
			delete(h.idx, k)
		}
	}
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return true, false
}

// deliver queues nt to w without blocking; a watcher too slow to keep up
// is disconnected rather than allowed to stall the node.
func (h *hub) deliver(w *watcher, nt Notice) {
	// Touched before the send: once queued, the notice may reach the
	// client before this goroutine runs again.
	w.touch(h.n.opt.Now())
	select {
	case w.send <- nt:
		h.n.metrics.notices.Inc()
	default:
		w.end("too slow to keep up")
	}
}

// toKey sends nt to every watcher of k and returns the users told.
func (h *hub) toKey(k [16]byte, nt Notice) []string {
	h.mu.Lock()
	ws := make([]*watcher, 0, len(h.byKey[k]))
	for w := range h.byKey[k] {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	users := make([]string, 0, len(ws))
	for _, w := range ws {
		h.deliver(w, nt)
		users = append(users, w.user)
	}
	return users
}

// broadcastStaff sends nt to every watcher of this node (its own staff).
func (h *hub) broadcastStaff(nt Notice) {
	h.mu.Lock()
	ws := make([]*watcher, 0, len(h.all))
	for w := range h.all {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		h.deliver(w, nt)
	}
}

// toUser sends nt to every watcher of user (each of their pages).
func (h *hub) toUser(user string, nt Notice) {
	h.mu.Lock()
	var ws []*watcher
	for w := range h.all {
		if w.user == user {
			ws = append(ws, w)
		}
	}
	h.mu.Unlock()
	for _, w := range ws {
		h.deliver(w, nt)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ws := make([]*watcher, 0, len(h.all))
	for w := range h.all {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	h.wg.Wait()
	h.mu.Lock()
	idx := h.idx
	h.idx = make(map[[16]byte]func())
	h.mu.Unlock()
	for _, c := range idx {
		c()
	}
}

// onWatchedEvent relays a change under a watched key: it must not block.
func (n *Node) onWatchedEvent(ev IndexEvent) {
	typ := "involved"
	if ev.Deleted {
		typ = "withdrawn"
	}
	users := n.hub.toKey(ev.Lookup, Notice{Type: typ, LookupKey: encodeKey(ev.Lookup), Entry: base64.StdEncoding.EncodeToString(ev.Entry)})
	for _, u := range users {
		n.audit(n.ctxBackground(), AuditEvent{Action: "notify", Actor: u, Count: 1, Outcome: "ok", Subject: [][16]byte{ev.Lookup}})
	}
}

// onMineEvent turns another agency's new entry under one of this node's own
// lookup keys into a "match" notice for this node's staff.
func (n *Node) onMineEvent(ev IndexEvent) {
	if ev.Deleted {
		return
	}
	key := encodeKey(ev.Lookup)
	localID, me, mine, err := n.records.Owner(ev.Lookup)
	if err != nil || !mine {
		return
	}
	h, err := n.opt.Index.Open(n.ctxBackground(), me.Seal, ev.Entry)
	if err != nil || h.Own || h.NodeID == n.cfg.NodeID {
		return
	}
	// A shielded holder's match is audited as its broker's (the only node
	// the entry names), and shown as a shielded service.
	peer := cmp.Or(h.NodeID, h.Broker)
	n.audit(n.ctxBackground(), AuditEvent{Action: "match", Actor: "node:" + peer, Peer: peer, LocalID: localID, Purpose: me.Purpose, Count: 1, Outcome: "ok", Subject: [][16]byte{ev.Lookup}})
	v := n.holderView(h)
	n.hub.broadcastStaff(Notice{Type: "match", LookupKey: key, LocalID: localID, Holder: &v})
}

func encodeKey(k [16]byte) string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// originAllowed is the node's one Origin rule (auth.OriginAllowed): no
// Origin (a non-browser client), an Origin on Config.AllowedOrigins, or,
// when that list is empty, the request's own host. The auth package applies
// the same function, with the same list, to cookie-authenticated writes.
func (n *Node) originAllowed(r *http.Request) bool {
	return auth.OriginAllowed(r, n.cfg.AllowedOrigins)
}

// handleWatch opens a watch. Everything that can refuse it — the Origin,
// a missing handshake, the keys named in the query (at most MaxWatchKeys,
// each a lookup key), the caps on watches per user and per node — is
// checked before the handshake is answered, so a refusal is a JSON error
// and neither writes nor audits anything. An accepted handshake is one
// audit line naming how many keys it watches.
func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) error {
	if !n.originAllowed(r) {
		return errorf(http.StatusForbidden, httpx.CodeOriginForbidden, "this origin may not open a watch")
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return errorf(http.StatusBadRequest, httpx.CodeWebSocket, "GET /v1/watch needs a WebSocket handshake")
	}
	// Keys may also be given in the query: ?lookupKey=a&lookupKey=b
	var keys [][16]byte
	seen := map[[16]byte]bool{}
	for _, s := range r.URL.Query()["lookupKey"] {
		k, aerr := decodeLookupKey(s)
		if aerr != nil {
			return aerr
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		if len(keys) > MaxWatchKeys {
			return errorf(http.StatusBadRequest, httpx.CodeTooManyKeys, "a watch may name at most %d lookup keys", MaxWatchKeys)
		}
	}
	p := principalFrom(r.Context())
	now := n.opt.Now()
	wt := &watcher{user: p.Name, send: make(chan Notice, wsSendQueue), done: make(chan struct{}),
		opened: now.UnixNano(), keys: make(map[[16]byte]bool), seen: make(map[[16]byte]bool)}
	wt.touch(now)
	if aerr := n.hub.add(wt); aerr != nil {
		return aerr
	}
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		CheckOrigin:     n.originAllowed,
		// Refusals (a bad handshake) in the API's JSON shape rather than
		// the library's plain text.
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
			writeError(w, status, httpx.CodeWebSocket, "GET /v1/watch needs a WebSocket handshake")
		},
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		n.hub.remove(wt)
		n.hub.wg.Done() // the reader and writer add counted
		n.hub.wg.Done()
		return nil // the upgrader has answered
	}
	for _, k := range keys {
		n.hub.watch(wt, k, true)
	}
	n.audit(r.Context(), AuditEvent{Action: "watch", Actor: p.Name, Count: len(keys), Outcome: "ok", Subject: keys})
	go n.wsWriter(conn, wt)
	go n.wsReader(conn, wt, p)
	return nil
}

func (n *Node) wsWriter(conn *websocket.Conn, wt *watcher) {
	defer n.hub.wg.Done()
	ping := time.NewTicker(wsPingEvery)
	check := time.NewTicker(n.hub.checkEvery)
	defer func() {
		ping.Stop()
		check.Stop()
		why, _ := wt.why.Load().(string)
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, why), time.Now().Add(time.Second))
		conn.Close()
		n.hub.remove(wt)
	}()
	for {
		select {
		case <-wt.done:
			return
		case nt := <-wt.send:
			conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
			if err := conn.WriteJSON(nt); err != nil {
				wt.stop()
				return
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
				wt.stop()
				return
			}
		case <-check.C:
			// Pongs do not count as activity: a client that only answers
			// pings is idle.
			now := n.opt.Now().UnixNano()
			switch {
			case now-wt.opened >= int64(n.cfg.WatchLifetime.D()):
				wt.end("the watch reached its lifetime; watch again")
				return
			case now-wt.last.Load() >= int64(n.cfg.WatchIdle.D()):
				wt.end("the watch was idle; watch again")
				return
			}
		}
	}
}

func (n *Node) wsReader(conn *websocket.Conn, wt *watcher, p Principal) {
	defer n.hub.wg.Done()
	defer wt.stop()
	conn.SetReadLimit(wsReadLimit)
	conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })
	go func() { // unblock ReadMessage when the watcher stops
		<-wt.done
		conn.SetReadDeadline(time.Now())
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		conn.SetReadDeadline(time.Now().Add(wsPongWait))
		wt.touch(n.opt.Now())
		var m clientMsg
		if err := httpx.Unmarshal(data, &m); err != nil {
			n.hub.deliver(wt, Notice{Type: "error", Message: "send {\"watch\": \"<lookupKey>\"}"})
			continue
		}
		for _, c := range []struct {
			s  string
			on bool
		}{{m.Watch, true}, {m.Unwatch, false}} {
			if c.s == "" {
				continue
			}
			k, aerr := decodeLookupKey(c.s)
			if aerr != nil {
				n.hub.deliver(wt, Notice{Type: "error", Message: aerr.Message})
				continue
			}
			ok, first := n.hub.watch(wt, k, c.on)
			if !ok {
				n.hub.deliver(wt, Notice{Type: "error", Message: fmt.Sprintf("a watch may name at most %d lookup keys in its life; open another", MaxWatchKeys)})
				continue
			}
			if first {
				n.audit(n.ctxBackground(), AuditEvent{Action: "watch", Actor: p.Name, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
			}
			if c.on {
				n.hub.deliver(wt, Notice{Type: "watching", LookupKey: c.s})
			}
		}
	}
}

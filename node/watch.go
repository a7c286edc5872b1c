package node

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
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
	// MaxWatchKeys bounds the lookup keys one connection watches.
	MaxWatchKeys = 64
)

// Notice is one message to a watcher.
type Notice struct {
	// Type: involved, withdrawn (under a watched key), match (a new entry
	// under one of this node's own lookup keys), contact-request (received
	// by this node), watching (acknowledgement), error.
	Type      string           `json:"type"`
	LookupKey string           `json:"lookupKey,omitempty"`
	Entry     string           `json:"entry,omitempty"`
	LocalID   string           `json:"localId,omitempty"`
	Holder    *HolderView      `json:"holder,omitempty"`
	Contact   *ReceivedContact `json:"contact,omitempty"`
	Message   string           `json:"message,omitempty"`
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

	// keys watched; guarded by hub.mu
	keys map[[16]byte]bool
}

func (w *watcher) stop() { w.once.Do(func() { close(w.done) }) }

// hub fans index events out to watchers.
type hub struct {
	n     *Node
	mu    sync.Mutex
	all   map[*watcher]bool
	byKey map[[16]byte]map[*watcher]bool
	// idx holds one index watch per watched key.
	idx    map[[16]byte]func()
	closed bool
	wg     sync.WaitGroup
}

func newHub(n *Node) *hub {
	return &hub{n: n, all: make(map[*watcher]bool), byKey: make(map[[16]byte]map[*watcher]bool), idx: make(map[[16]byte]func())}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all)
}

func (h *hub) add(w *watcher) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.all[w] = true
	return true
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.all, w)
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

func (h *hub) watch(w *watcher, k [16]byte, on bool) bool {
	h.mu.Lock()
	if on {
		if h.closed || len(w.keys) >= MaxWatchKeys && !w.keys[k] {
			h.mu.Unlock()
			return false
		}
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
		return true
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
	return true
}

// deliver queues nt to w without blocking; a watcher too slow to keep up
// is disconnected rather than allowed to stall the node.
func (h *hub) deliver(w *watcher, nt Notice) {
	select {
	case w.send <- nt:
		h.n.metrics.notices.Inc()
	default:
		w.stop()
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
	n.mu.Lock()
	me, mine := n.mine[ev.Lookup]
	n.mu.Unlock()
	if !mine {
		return
	}
	h, err := n.opt.Index.Open(n.ctxBackground(), me.seal, ev.Entry)
	if err != nil || h.NodeID == n.cfg.NodeID {
		return
	}
	n.audit(n.ctxBackground(), AuditEvent{Action: "match", Actor: "node:" + h.NodeID, Peer: h.NodeID, LocalID: me.localID, Purpose: me.purpose, Count: 1, Outcome: "ok", Subject: [][16]byte{ev.Lookup}})
	n.hub.broadcastStaff(Notice{Type: "match", LookupKey: key, LocalID: me.localID,
		Holder: &HolderView{NodeID: h.NodeID, Agency: n.agencyName(h), Category: shownCategory(h.Category), Since: h.Since}})
}

func encodeKey(k [16]byte) string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// originAllowed is the node's one Origin rule (auth.OriginAllowed): no
// Origin (a non-browser client), an Origin on Config.AllowedOrigins, or,
// when that list is empty, the request's own host. The auth package applies
// the same function, with the same list, to cookie-authenticated writes.
func (n *Node) originAllowed(r *http.Request) bool {
	return auth.OriginAllowed(r, n.cfg.AllowedOrigins)
}

func (n *Node) handleWatch(w http.ResponseWriter, r *http.Request) error {
	if !n.originAllowed(r) {
		return errorf(http.StatusForbidden, httpx.CodeOriginForbidden, "this origin may not open a watch")
	}
	up := websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		CheckOrigin:     n.originAllowed,
		// Refusals (a plain GET, a bad handshake) in the API's JSON shape
		// rather than the library's plain text.
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
			writeError(w, status, httpx.CodeWebSocket, "GET /v1/watch needs a WebSocket handshake")
		},
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	p := principalFrom(r.Context())
	wt := &watcher{user: p.Name, send: make(chan Notice, wsSendQueue), done: make(chan struct{}), keys: make(map[[16]byte]bool)}
	if !n.hub.add(wt) {
		conn.Close()
		return nil
	}
	// Keys may also be given in the query: ?lookupKey=a&lookupKey=b
	for _, s := range r.URL.Query()["lookupKey"] {
		if k, aerr := decodeLookupKey(s); aerr == nil {
			n.hub.watch(wt, k, true)
			n.audit(r.Context(), AuditEvent{Action: "watch", Actor: p.Name, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
		}
	}
	n.hub.wg.Add(2)
	go n.wsWriter(conn, wt)
	go n.wsReader(conn, wt, p)
	return nil
}

func (n *Node) wsWriter(conn *websocket.Conn, wt *watcher) {
	defer n.hub.wg.Done()
	ping := time.NewTicker(wsPingEvery)
	defer func() {
		ping.Stop()
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
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
		var m clientMsg
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
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
			if !n.hub.watch(wt, k, c.on) {
				n.hub.deliver(wt, Notice{Type: "error", Message: "too many watched keys on this connection"})
				continue
			}
			if c.on {
				n.audit(n.ctxBackground(), AuditEvent{Action: "watch", Actor: p.Name, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
				n.hub.deliver(wt, Notice{Type: "watching", LookupKey: c.s})
			} else {
				n.audit(n.ctxBackground(), AuditEvent{Action: "unwatch", Actor: p.Name, Count: 1, Outcome: "ok", Subject: [][16]byte{k}})
			}
		}
	}
}

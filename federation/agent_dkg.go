package federation

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/federation/dkg"
)

// PeerDKGPath is where DKG messages are POSTed (body: one encoded
// dkg.Message). Only authenticated members named in the session's config
// may post; the first message of a session this node does not know must be
// a Hello, which carries the config.
const PeerDKGPath = "/federation/v1/dkg"

// Errors of the agent's DKG methods.
var (
	// ErrNoShareDir: the node has no ShareDir (nor DataDir) to keep shares in.
	ErrNoShareDir = errors.New("federation: no share directory configured")
	// ErrDKGRefused: the node will not take part in the session (it is not
	// named, a participant is not an enrolled member, too many sessions, a
	// reshare that does not match the record in force or that this node's
	// operator has not approved).
	ErrDKGRefused = errors.New("federation: DKG session refused")
	// ErrNoShare: the node holds no share of the key in force.
	ErrNoShare = errors.New("federation: no key share held")
)

// DKGStatus is a session's progress as this node sees it.
type DKGStatus struct {
	dkg.Status
	// SharePath and ResultPath are the files written when the session
	// finished (SharePath empty when this node holds no share).
	SharePath, ResultPath string
	// Err is set when the session finished but its files could not be
	// written, or the agent stopped before it finished.
	Err string
}

// dkgRun is one session and the goroutine that drives it.
type dkgRun struct {
	id   dkg.SessionID
	in   chan dkgInbound
	done chan struct{} // closed when the driver has exited

	mu     sync.Mutex // guards the fields below
	s      *dkg.Session
	status DKGStatus
}

type dkgInbound struct {
	from string
	m    *dkg.Message
}

func (r *dkgRun) snapshot() DKGStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Answered = slices.Clone(st.Answered)
	st.Waiting = slices.Clone(st.Waiting)
	st.Excluded = slices.Clone(st.Excluded)
	st.Holders = slices.Clone(st.Holders)
	st.Unconfirmed = slices.Clone(st.Unconfirmed)
	return st
}

// StartDKG starts a DKG of a fresh key among cfg.Participants, with this
// node as the first to speak; the others join when its Hello reaches them.
// A zero cfg.Start is now, a zero cfg.PhaseTimeout is DKGPhaseTimeout.
// Every participant must be an enrolled member this node knows. On
// completion every holder writes its share file (0600) and the public
// result into its ShareDir; the result is what the authority signs
// (`signpost federation sign-key`). Watch it with DKGStatus or the
// DKGEnded event.
func (a *Agent) StartDKG(ctx context.Context, cfg dkg.Config) (dkg.SessionID, error) {
	if cfg.Reshare != nil {
		return dkg.SessionID{}, fmt.Errorf("%w: a reshare starts with StartReshare", ErrDKGRefused)
	}
	return a.startSession(ctx, cfg)
}

// StartReshare starts (or, with the identical config, joins) a reshare of
// the key in force for (cfg.Purpose, cfg.Epoch) to cfg.Participants with
// threshold cfg.T. cfg.Reshare is filled from the record in force. A
// holder deals its share only in a reshare its own operator started here
// or approved (ApproveReshare): no peer can make it hand its share to a
// set of its choosing. After the new record is adopted, each old holder
// calls EraseOldShares.
func (a *Agent) StartReshare(ctx context.Context, cfg dkg.Config) (dkg.SessionID, error) {
	rec, ok := a.KeyRecord(cfg.Purpose, cfg.Epoch)
	if !ok {
		return dkg.SessionID{}, fmt.Errorf("%w: no key record for (%s, %d) to reshare", ErrDKGRefused, cfg.Purpose, cfg.Epoch)
	}
	ks := rec.KeySet()
	cfg.Reshare = &dkg.ReshareFrom{T: ks.T, Holders: ks.Issuers, GroupKey: ks.GroupKey}
	return a.startSession(ctx, cfg)
}

// ApproveReshare lets this node deal its share in the reshare session id
// when a peer's Hello for it arrives. The operator gets the id from the
// initiating node's operator (DKGStatus, the operator command) and checks
// the new issuer set before approving.
func (a *Agent) ApproveReshare(id dkg.SessionID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.approved == nil {
		a.mu.approved = map[dkg.SessionID]bool{}
	}
	a.mu.approved[id] = true
}

func (a *Agent) startSession(ctx context.Context, cfg dkg.Config) (dkg.SessionID, error) {
	if err := ctx.Err(); err != nil {
		return dkg.SessionID{}, err
	}
	if !a.started.Load() {
		return dkg.SessionID{}, ErrNotStarted
	}
	if cfg.Start.IsZero() {
		cfg.Start = a.cfg.Now()
	}
	if cfg.PhaseTimeout == 0 {
		cfg.PhaseTimeout = a.cfg.DKGPhaseTimeout
	}
	if err := cfg.Validate(); err != nil {
		return dkg.SessionID{}, err
	}
	id := cfg.ID()
	if cfg.Reshare != nil {
		a.ApproveReshare(id)
	}
	if r := a.dkgRun(id); r != nil {
		return id, nil
	}
	_, err := a.joinSession(cfg, a.self.Descriptor.NodeID)
	return id, err
}

// DKGStatus returns the status of session id, if this node takes or took
// part in it.
func (a *Agent) DKGStatus(id dkg.SessionID) (DKGStatus, bool) {
	r := a.dkgRun(id)
	if r == nil {
		return DKGStatus{}, false
	}
	return r.snapshot(), true
}

// DKGResult returns the public result of session id once it is done: what
// the authority signs into a key record (KeyRecordFromKeySet, then
// Authority.SignKeyRecord or `signpost federation sign-key` on the result
// file). It reads the result file the session wrote.
func (a *Agent) DKGResult(id dkg.SessionID) (*dkg.KeySet, error) {
	st, ok := a.DKGStatus(id)
	switch {
	case !ok:
		return nil, fmt.Errorf("federation: no DKG session %s here", id)
	case st.Phase == dkg.PhaseAborted:
		return nil, fmt.Errorf("%w: %s", dkg.ErrAborted, st.Reason)
	case st.Phase != dkg.PhaseDone || st.ResultPath == "":
		return nil, fmt.Errorf("%w: in phase %s", dkg.ErrNotFinished, st.Phase)
	case st.Err != "":
		return nil, fmt.Errorf("federation: DKG session %s: %s", id, st.Err)
	}
	return LoadDKGResult(st.ResultPath)
}

// DKGSessions lists the status of every session this node keeps.
func (a *Agent) DKGSessions() []DKGStatus {
	a.mu.Lock()
	runs := make([]*dkgRun, 0, len(a.mu.dkg))
	for _, r := range a.mu.dkg {
		runs = append(runs, r)
	}
	a.mu.Unlock()
	out := make([]DKGStatus, len(runs))
	for i, r := range runs {
		out[i] = r.snapshot()
	}
	slices.SortFunc(out, func(x, y DKGStatus) int { return bytes.Compare(x.Session[:], y.Session[:]) })
	return out
}

func (a *Agent) dkgRun(id dkg.SessionID) *dkgRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.dkg[id]
}

// sharePath is where this node keeps its share of (purpose, epoch) from
// session id; resultPath the session's public result.
func (a *Agent) sharePath(purpose string, epoch uint32, id dkg.SessionID) string {
	return filepath.Join(a.cfg.ShareDir, ShareFileName(purpose, epoch, id))
}

// ShareFileName is the name of a holder's share file of the key that
// session id made for (purpose, epoch), in its share directory.
func ShareFileName(purpose string, epoch uint32, id dkg.SessionID) string {
	return fmt.Sprintf("%s.%d.%s.share", purpose, epoch, id)
}

func (a *Agent) resultPath(purpose string, epoch uint32, id dkg.SessionID) string {
	return filepath.Join(a.cfg.ShareDir, fmt.Sprintf("%s.%d.%s.result.pem", purpose, epoch, id))
}

// joinSession checks that this node may take part in cfg's session (from
// is the node whose message or call started it) and starts its driver.
func (a *Agent) joinSession(cfg dkg.Config, from string) (*dkgRun, error) {
	if a.cfg.ShareDir == "" {
		return nil, ErrNoShareDir
	}
	id := cfg.ID()
	me := a.self.Descriptor.NodeID
	named := map[string]bool{}
	for _, p := range cfg.Participants {
		named[p.NodeID] = true
	}
	dealer := false
	if cfg.Reshare != nil {
		for _, h := range cfg.Reshare.Holders {
			named[h.NodeID] = true
			dealer = dealer || h.NodeID == me
		}
	}
	if !named[me] {
		return nil, fmt.Errorf("%w: this node is not named in session %s", ErrDKGRefused, id)
	}
	if !named[from] {
		return nil, fmt.Errorf("%w: %s is not named in session %s", ErrDKGRefused, from, id)
	}
	// A session whose schedule is over, or that starts far in the future,
	// would only hold one of the MaxDKGSessions places.
	now := a.cfg.Now()
	if end := cfg.Start.Add(5 * cfg.PhaseTimeout); !now.Before(end) {
		return nil, fmt.Errorf("%w: session %s ended at %s", ErrDKGRefused, id, end.Format(time.RFC3339))
	}
	if skew := max(time.Minute, cfg.PhaseTimeout); cfg.Start.After(now.Add(skew)) {
		return nil, fmt.Errorf("%w: session %s starts at %s, more than %v from now", ErrDKGRefused, id, cfg.Start.Format(time.RFC3339), skew)
	}
	for n := range named {
		if n == me {
			continue
		}
		if _, ok := a.Descriptor(n); !ok {
			return nil, fmt.Errorf("%w: participant %s is not an enrolled member known to this node", ErrDKGRefused, n)
		}
	}
	var old *dkg.Share
	if cfg.Reshare != nil {
		rec, ok := a.KeyRecord(cfg.Purpose, cfg.Epoch)
		if !ok || !sameKey(rec, cfg.Reshare) {
			return nil, fmt.Errorf("%w: reshare %s does not match the key record in force for (%s, %d)", ErrDKGRefused, id, cfg.Purpose, cfg.Epoch)
		}
		if dealer {
			a.mu.Lock()
			ok := a.mu.approved[id]
			a.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("%w: reshare %s is not approved on this node (its operator must start or approve it)", ErrDKGRefused, id)
			}
			var err error
			if old, err = a.Share(cfg.Purpose, cfg.Epoch); err != nil {
				return nil, err
			}
			defer old.Erase()
		}
	}
	if err := os.MkdirAll(a.cfg.ShareDir, 0o700); err != nil {
		return nil, fmt.Errorf("federation: share dir: %w", err)
	}

	var s *dkg.Session
	var out []dkg.Message
	var err error
	if cfg.Reshare == nil {
		s, out, err = dkg.New(cfg, me, crand.Reader)
	} else {
		s, out, err = dkg.NewReshare(cfg, me, old, crand.Reader)
	}
	if err != nil {
		return nil, err
	}
	r := &dkgRun{id: id, s: s, in: make(chan dkgInbound, 64), done: make(chan struct{})}
	r.status = DKGStatus{Status: s.Status()}
	a.mu.Lock()
	if cur := a.mu.dkg[id]; cur != nil {
		a.mu.Unlock()
		s.Close()
		return cur, nil
	}
	if a.mu.closed {
		a.mu.Unlock()
		s.Close()
		return nil, ErrShutdown
	}
	if len(a.mu.dkg) >= a.cfg.MaxDKGSessions {
		a.evictFinishedLocked()
	}
	if len(a.mu.dkg) >= a.cfg.MaxDKGSessions {
		a.mu.Unlock()
		s.Close()
		return nil, fmt.Errorf("%w: this node already keeps %d sessions", ErrDKGRefused, a.cfg.MaxDKGSessions)
	}
	a.mu.dkg[id] = r
	a.wg.Add(1)
	a.mu.Unlock()
	a.log.Info("DKG session joined", "session", id.String(), "purpose", cfg.Purpose, "epoch", cfg.Epoch,
		"t", cfg.T, "n", len(cfg.Participants), "reshare", cfg.Reshare != nil, "from", from)
	go func() {
		defer a.wg.Done()
		a.driveDKG(r, out)
	}()
	return r, nil
}

// evictFinishedLocked forgets the sessions whose driver has exited, to make
// room for a new one. REQUIRES: a.mu.
func (a *Agent) evictFinishedLocked() {
	for id, r := range a.mu.dkg {
		select {
		case <-r.done:
			delete(a.mu.dkg, id)
		default:
		}
	}
}

// sameKey reports whether a reshare config's current key is the record's.
func sameKey(rec *KeyRecord, rf *dkg.ReshareFrom) bool {
	if rec.T != rf.T || !bytes.Equal(rec.GroupKey, rf.GroupKey) || len(rec.Issuers) != len(rf.Holders) {
		return false
	}
	hs := slices.Clone(rf.Holders)
	slices.SortFunc(hs, func(x, y dkg.PublicShare) int { return int(x.Index) - int(y.Index) })
	for i, is := range rec.Issuers {
		if is.NodeID != hs[i].NodeID || is.Index != hs[i].Index || !bytes.Equal(is.PublicShare, hs[i].Key) {
			return false
		}
	}
	return true
}

// driveDKG runs one session until it is final or the agent shuts down:
// it feeds the session the messages peers post, ticks it at its
// deadlines on the agent's clock, broadcasts what it says, and resends
// everything it said so far a few times per phase (peers drop exact
// repeats), so a peer that missed a message, or joined late, catches up.
func (a *Agent) driveDKG(r *dkgRun, first []dkg.Message) {
	defer close(r.done)
	s := r.s
	peers := s.Peers()
	cfg := s.Config()
	var sent [][]byte
	broadcast := func(ms []dkg.Message) {
		for _, m := range ms {
			if a.dkgOutFilter != nil && !a.dkgOutFilter(m) {
				continue
			}
			enc := m.Encode()
			sent = append(sent, enc)
			a.sendDKG(peers, enc)
		}
	}
	broadcast(first)
	resendEvery := max(cfg.PhaseTimeout/4, 10*time.Millisecond)
	resend := time.NewTicker(resendEvery)
	defer resend.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		r.mu.Lock()
		st := s.Status()
		r.status.Status = st
		deadline := s.Deadline()
		r.mu.Unlock()
		if st.Phase >= dkg.PhaseDone {
			a.finishDKG(r)
			a.lingerDKG(r, peers, sent, resend)
			return
		}
		timer.Reset(max(deadline.Sub(a.cfg.Now()), 0))
		select {
		case <-a.shutdownCh:
			r.mu.Lock()
			r.status.Err = "the agent stopped before the session finished"
			s.Close()
			r.mu.Unlock()
			return
		case in := <-r.in:
			r.mu.Lock()
			out, err := s.Handle(in.from, in.m, a.cfg.Now())
			r.mu.Unlock()
			if err != nil && !errors.Is(err, dkg.ErrLate) {
				a.log.Debug("DKG message refused", "session", r.id.String(), "from", in.from, "err", err)
			}
			broadcast(out)
		case <-timer.C:
			r.mu.Lock()
			out := s.Tick(a.cfg.Now())
			r.mu.Unlock()
			broadcast(out)
		case <-resend.C:
			for _, enc := range sent {
				a.sendDKG(peers, enc)
			}
		}
	}
}

// lingerDKG keeps resending a finished session's messages for one more
// phase timeout: a peer that missed this node's last message (its Confirm)
// would otherwise leave it out of the holders.
func (a *Agent) lingerDKG(r *dkgRun, peers []string, sent [][]byte, resend *time.Ticker) {
	end := time.NewTimer(r.s.Config().PhaseTimeout)
	defer end.Stop()
	for {
		select {
		case <-a.shutdownCh:
			return
		case <-end.C:
			return
		case <-r.in: // the session is final: nothing to do with it
		case <-resend.C:
			for _, enc := range sent {
				a.sendDKG(peers, enc)
			}
		}
	}
}

func (a *Agent) sendDKG(peers []string, enc []byte) {
	for _, p := range peers {
		if s := a.senderFor(p); s != nil && !s.enqueue(outItem{path: PeerDKGPath, body: enc}) {
			a.stats.sendDropped.Add(1)
		}
	}
}

// finishDKG stores a finished session's share and result, erases the
// session's secrets and reports the end.
func (a *Agent) finishDKG(r *dkgRun) {
	r.mu.Lock()
	s := r.s
	res, err := s.Result()
	if err == nil {
		r.status.ResultPath = a.resultPath(res.Purpose, res.Epoch, res.Session)
		if werr := writeDKGResultOwnerOnly(r.status.ResultPath, &res.KeySet); werr != nil {
			r.status.Err = werr.Error()
		}
		if res.Share != nil {
			r.status.SharePath = a.sharePath(res.Purpose, res.Epoch, res.Session)
			if werr := WriteShare(r.status.SharePath, res.Share); werr != nil {
				r.status.Err = werr.Error()
			}
			res.Share.Erase()
		}
	}
	s.Close()
	st := r.status
	r.mu.Unlock()
	a.log.Info("DKG session ended", "session", r.id.String(), "phase", st.Phase.String(), "reason", st.Reason,
		"holders", strings.Join(st.Holders, ","), "err", st.Err)
	a.emit(MemberEvent{Type: DKGEnded, DKG: &st})
}

// handleDKG receives one DKG message from an authenticated peer.
func (a *Agent) handleDKG(w http.ResponseWriter, req *http.Request) {
	from, _ := PeerFromContext(req.Context())
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, int64(dkg.MaxMessageSize))); err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "DKG message too large")
		return
	}
	m, err := dkg.DecodeMessage(buf.Bytes())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_dkg_message", err.Error())
		return
	}
	r := a.dkgRun(m.Session)
	if r == nil {
		if m.Kind != dkg.KindHello {
			writeError(w, http.StatusNotFound, "unknown_session", "no such DKG session here yet; send its hello first")
			return
		}
		cfg, err := dkg.DecodeConfig(m.Config)
		if err == nil {
			r, err = a.joinSession(cfg, from.NodeID)
		}
		if err != nil {
			writeError(w, http.StatusForbidden, "dkg_refused", err.Error())
			return
		}
	}
	select {
	case <-r.done:
		w.WriteHeader(http.StatusNoContent) // finished: nothing more to do
	case r.in <- dkgInbound{from: from.NodeID, m: m}:
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusServiceUnavailable, "busy", "DKG session queue full")
	}
}

// Share loads this node's share of the key in force for (purpose, epoch):
// the share file of the record's session, refused if group or others may
// read it (ErrUnsafeShareFile), and checked against the node's public
// share in the record. The caller erases it (dkg.Share.Erase) when done.
func (a *Agent) Share(purpose string, epoch uint32) (*dkg.Share, error) {
	rec, ok := a.KeyRecord(purpose, epoch)
	if !ok {
		return nil, fmt.Errorf("%w: no key record for (%s, %d)", ErrNoShare, purpose, epoch)
	}
	me := a.self.Descriptor.NodeID
	is, ok := rec.Issuer(me)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an issuer of (%s, %d)", ErrNoShare, me, purpose, epoch)
	}
	if a.cfg.ShareDir == "" {
		return nil, ErrNoShareDir
	}
	path := a.sharePath(purpose, epoch, rec.Session)
	sh, err := LoadShare(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing", ErrNoShare, path)
		}
		return nil, err
	}
	pub, err := sh.PublicKey()
	if err != nil || sh.Index != is.Index || sh.Purpose != purpose || sh.Epoch != epoch || sh.Session != rec.Session ||
		!bytes.Equal(pub, is.PublicShare) {
		sh.Erase()
		return nil, fmt.Errorf("federation: %s does not match this node's public share in the key record", path)
	}
	return sh, nil
}

// EraseOldShares removes this node's share files of (purpose, epoch) other
// than the one of the record in force (all of them when this node is no
// longer an issuer of it, or when the record is retired: its RetireAt has
// passed), overwriting each with zeros first. An old holder calls it once
// a reshare's record is adopted; it is explicit because only the operator
// knows the new record is in force everywhere that matters. After a
// rotation, the issuers call it for the old epoch once its record is
// retired (node/adapter's FederationKeyring does so when it notices). It
// returns the files removed.
func (a *Agent) EraseOldShares(purpose string, epoch uint32) ([]string, error) {
	rec, ok := a.KeyRecord(purpose, epoch)
	if !ok {
		return nil, fmt.Errorf("federation: no key record for (%s, %d): nothing proves the old shares are replaced", purpose, epoch)
	}
	if a.cfg.ShareDir == "" {
		return nil, ErrNoShareDir
	}
	keep := ""
	retired := !rec.RetireAt.IsZero() && !a.cfg.Now().Before(rec.RetireAt)
	if _, ok := rec.Issuer(a.self.Descriptor.NodeID); ok && !retired {
		keep = a.sharePath(purpose, epoch, rec.Session)
	}
	matches, err := filepath.Glob(filepath.Join(a.cfg.ShareDir, fmt.Sprintf("%s.%d.*.share", purpose, epoch)))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range matches {
		if p == keep {
			continue
		}
		if err := eraseFile(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		a.log.Info("old key shares erased", "purpose", purpose, "epoch", epoch, "files", len(removed))
	}
	return removed, errors.Join(errs...)
}

// eraseFile overwrites a file with zeros, syncs it and removes it.
func eraseFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("federation: erase %s: %w", path, err)
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, st.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("federation: erase %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("federation: erase %s: %w", path, err)
	}
	return nil
}

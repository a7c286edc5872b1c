package dkg

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/math/polynomial"
	"github.com/cloudflare/circl/secretsharing"
)

// Phase is where a session stands. A session collects the messages of one
// round per phase; PhaseDone and PhaseAborted are final.
type Phase int

// The phases, in order.
const (
	PhaseHello Phase = iota + 1
	PhaseDeal
	PhaseComplaints
	PhaseJustification
	PhaseConfirm
	PhaseDone
	PhaseAborted
)

// MarshalText is the phase's name ("hello" … "aborted"), for JSON statuses.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

func (p Phase) String() string {
	switch p {
	case PhaseHello:
		return "hello"
	case PhaseDeal:
		return "deal"
	case PhaseComplaints:
		return "complaints"
	case PhaseJustification:
		return "justification"
	case PhaseConfirm:
		return "confirm"
	case PhaseDone:
		return "done"
	case PhaseAborted:
		return "aborted"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Sentinel errors callers branch on.
var (
	// ErrAborted is wrapped by Result for a session that aborted; the
	// status's Reason says why.
	ErrAborted = errors.New("dkg: session aborted")
	// ErrNotFinished is returned by Result before the session is done.
	ErrNotFinished = errors.New("dkg: session not finished")
	// ErrNotParticipant is returned for a node the config does not name.
	ErrNotParticipant = errors.New("dkg: not a participant of the session")
	// ErrWrongSession is returned by Handle for a message of another session.
	ErrWrongSession = errors.New("dkg: message of another session")
	// ErrUnexpected is returned by Handle for a message the sender may not
	// send (a deal from a node that is not a dealer, a second, different
	// message for the same round).
	ErrUnexpected = errors.New("dkg: unexpected message")
	// ErrLate is returned by Handle for a message whose round this
	// participant has already closed; it is ignored.
	ErrLate = errors.New("dkg: message after its round closed")
)

// suite is the HPKE suite that seals shares: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, ChaCha20-Poly1305.
var (
	hpkeKEM  = hpke.DHKEM(ecdh.X25519())
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.ChaCha20Poly1305()
)

// node is one participant as this session sees it.
type node struct {
	id        string
	recvIndex uint16 // index in the new key, 0 if it receives no share
	dealIndex uint16 // index it deals under, 0 if it does not deal
	oldKey    elem   // reshare: its current public share, which its C_0 must equal

	hello, deal, complaints, justification, confirm *Message

	hpkeKey hpke.PublicKey
	commits []elem // from its deal, or its justification
	out     string // why it is excluded, "" if it is not
}

// Session is one participant's run of a DKG or reshare. It is not safe for
// concurrent use: the agent serialises calls per session.
type Session struct {
	cfg        Config
	id         SessionID
	encodedCfg []byte
	rnd        io.Reader

	self       *node
	nodes      []*node // sorted by node id
	byID       map[string]*node
	dealers    []*node // sorted by deal index
	recipients []*node // sorted by new index
	needDeal   int     // qualified dealers needed

	phase  Phase
	reason string

	hpkePriv hpke.PrivateKey
	dealing  *secretsharing.SecretSharing
	received map[*node]group.Scalar // dealer → its share for this participant

	qual     []*node
	weights  map[*node]group.Scalar
	share    group.Scalar
	pub      map[*node]elem
	groupKey elem
	hash     []byte
	holders  []*node
}

// New starts this participant's (self's) session of a fresh key, and
// returns its Hello. rnd is the source of the HPKE key and the dealt secret
// (crypto/rand.Reader in production; circl draws the other polynomial
// coefficients from crypto/rand itself).
func New(cfg Config, self string, rnd io.Reader) (*Session, []Message, error) {
	if cfg.Reshare != nil {
		return nil, nil, fmt.Errorf("%w: a reshare config needs NewReshare", ErrInvalidConfig)
	}
	return newSession(cfg, self, nil, rnd)
}

// NewReshare starts self's session of a reshare. old is self's current
// share when self is a holder of the key being moved (it deals with
// f(0) = old), nil for a participant that only receives.
func NewReshare(cfg Config, self string, old *Share, rnd io.Reader) (*Session, []Message, error) {
	if cfg.Reshare == nil {
		return nil, nil, fmt.Errorf("%w: NewReshare needs a reshare config", ErrInvalidConfig)
	}
	return newSession(cfg, self, old, rnd)
}

func newSession(cfg Config, self string, old *Share, rnd io.Reader) (*Session, []Message, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.normalized()
	s := &Session{
		cfg: cfg, id: cfg.ID(), encodedCfg: cfg.Encode(), rnd: rnd,
		byID: map[string]*node{}, phase: PhaseHello, received: map[*node]group.Scalar{},
	}
	get := func(id string) *node {
		n := s.byID[id]
		if n == nil {
			n = &node{id: id}
			s.byID[id] = n
			s.nodes = append(s.nodes, n)
		}
		return n
	}
	for _, p := range cfg.Participants {
		n := get(p.NodeID)
		n.recvIndex = p.Index
		s.recipients = append(s.recipients, n)
	}
	if cfg.Reshare == nil {
		s.dealers = slices.Clone(s.recipients)
		for _, n := range s.dealers {
			n.dealIndex = n.recvIndex
		}
		s.needDeal = cfg.T
	} else {
		for _, h := range cfg.Reshare.Holders {
			n := get(h.NodeID)
			n.dealIndex = h.Index
			n.oldKey, _ = decodeElement(h.Key) // validated
			s.dealers = append(s.dealers, n)
		}
		s.needDeal = cfg.Reshare.T
	}
	slices.SortFunc(s.nodes, func(a, b *node) int { return strings.Compare(a.id, b.id) })
	s.self = s.byID[self]
	if s.self == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotParticipant, self)
	}

	var secret group.Scalar
	if s.self.dealIndex != 0 {
		if cfg.Reshare != nil {
			if old == nil || old.Index != s.self.dealIndex || old.Purpose != cfg.Purpose || old.Epoch != cfg.Epoch {
				return nil, nil, fmt.Errorf("dkg: %q deals in this reshare and needs its current share of (%s, %d) at index %d",
					self, cfg.Purpose, cfg.Epoch, s.self.dealIndex)
			}
			v, err := old.scalar()
			if err != nil {
				return nil, nil, err
			}
			if !g.NewElement().MulGen(v).IsEqual(s.self.oldKey) {
				return nil, nil, fmt.Errorf("dkg: %q: the share given does not match its public share in the current key", self)
			}
			secret = v
		} else {
			var b [64]byte
			if _, err := io.ReadFull(rnd, b[:]); err != nil {
				return nil, nil, fmt.Errorf("dkg: draw secret: %w", err)
			}
			secret = g.HashToScalar(b[:], []byte("signpost/v1/dkg secret"))
			clear(b[:])
		}
		ss := secretsharing.New(rnd, uint(cfg.T-1), secret)
		s.dealing = &ss
	}

	var ikm [32]byte
	if _, err := io.ReadFull(rnd, ikm[:]); err != nil {
		return nil, nil, fmt.Errorf("dkg: draw hpke key: %w", err)
	}
	priv, err := hpkeKEM.DeriveKeyPair(ikm[:])
	clear(ikm[:])
	if err != nil {
		return nil, nil, fmt.Errorf("dkg: hpke key: %w", err)
	}
	s.hpkePriv = priv
	hello := Message{Session: s.id, Kind: KindHello, Config: s.encodedCfg, HPKEKey: priv.PublicKey().Bytes()}
	s.self.hello = &hello
	s.self.hpkeKey = priv.PublicKey()
	// A session of one has nothing to wait for; any other waits for its
	// peers' hellos (the zero time is before every deadline).
	return s, append([]Message{hello}, s.advance(time.Time{})...), nil
}

// ID is the session id.
func (s *Session) ID() SessionID { return s.id }

// Config returns the session's (normalized) config.
func (s *Session) Config() Config { return s.cfg.normalized() }

// Peers lists the node ids every message of this participant goes to:
// every other participant, sorted.
func (s *Session) Peers() []string {
	var ps []string
	for _, n := range s.nodes {
		if n != s.self {
			ps = append(ps, n.id)
		}
	}
	return ps
}

// deadline is when phase p ends at the latest.
func (s *Session) deadline(p Phase) time.Time {
	return s.cfg.Start.Add(time.Duration(p) * s.cfg.PhaseTimeout)
}

// Deadline is when the current phase ends at the latest (zero once final):
// the time the caller should next call Tick if nothing arrives.
func (s *Session) Deadline() time.Time {
	if s.phase >= PhaseDone {
		return time.Time{}
	}
	return s.deadline(s.phase)
}

func kindPhase(k Kind) Phase { return Phase(k) }

// Handle takes one message from the authenticated node from, and returns
// the messages this participant broadcasts in answer. An error means the
// message was refused (the session is unchanged and goes on).
func (s *Session) Handle(from string, m *Message, now time.Time) ([]Message, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrUnexpected)
	}
	if m.Session != s.id {
		return nil, ErrWrongSession
	}
	n := s.byID[from]
	if n == nil || n == s.self {
		return nil, fmt.Errorf("%w: message from %q", ErrNotParticipant, from)
	}
	if s.phase >= PhaseDone || kindPhase(m.Kind) < s.phase {
		return nil, fmt.Errorf("%w: %s from %q in phase %s", ErrLate, m.Kind, from, s.phase)
	}
	var slot **Message
	switch m.Kind {
	case KindHello:
		if !bytes.Equal(m.Config, s.encodedCfg) {
			return nil, fmt.Errorf("%w: hello from %q with another config", ErrWrongSession, from)
		}
		slot = &n.hello
	case KindDeal:
		slot = &n.deal
	case KindJustification:
		slot = &n.justification
	case KindComplaints:
		slot = &n.complaints
	case KindConfirm:
		slot = &n.confirm
	default:
		return nil, fmt.Errorf("%w: kind %d", ErrUnexpected, m.Kind)
	}
	if (m.Kind == KindDeal || m.Kind == KindJustification) && n.dealIndex == 0 {
		return nil, fmt.Errorf("%w: %s from %q, which does not deal", ErrUnexpected, m.Kind, from)
	}
	if (m.Kind == KindComplaints || m.Kind == KindConfirm) && n.recvIndex == 0 {
		return nil, fmt.Errorf("%w: %s from %q, which receives no share", ErrUnexpected, m.Kind, from)
	}
	if *slot != nil {
		if bytes.Equal((*slot).Encode(), m.Encode()) {
			return nil, nil // a retransmission
		}
		return nil, fmt.Errorf("%w: a second, different %s from %q (the first is kept)", ErrUnexpected, m.Kind, from)
	}
	if m.Kind == KindHello {
		k, err := hpkeKEM.NewPublicKey(m.HPKEKey)
		if err != nil {
			return nil, fmt.Errorf("%w: hello from %q: hpke key: %w", ErrUnexpected, from, err)
		}
		n.hpkeKey = k
	}
	cp := *m
	*slot = &cp
	return s.advance(now), nil
}

// Tick closes every phase whose deadline is at or before now, and returns
// the messages this participant broadcasts as a result.
func (s *Session) Tick(now time.Time) []Message {
	return s.advance(now)
}

// advance closes phases while their messages are all in or their deadline
// has passed.
func (s *Session) advance(now time.Time) []Message {
	var out []Message
	for s.phase < PhaseDone {
		if len(s.waiting()) > 0 && now.Before(s.deadline(s.phase)) {
			break
		}
		switch s.phase {
		case PhaseHello:
			out = append(out, s.endHello()...)
		case PhaseDeal:
			out = append(out, s.endDeal()...)
		case PhaseComplaints:
			out = append(out, s.endComplaints()...)
		case PhaseJustification:
			out = append(out, s.endJustification()...)
		case PhaseConfirm:
			s.endConfirm()
		}
	}
	return out
}

// expected lists the nodes whose message the current phase waits for, and
// whether each has arrived.
func (s *Session) expected() (in, missing []*node) {
	add := func(n *node, m *Message) {
		if m == nil {
			missing = append(missing, n)
		} else {
			in = append(in, n)
		}
	}
	switch s.phase {
	case PhaseHello:
		for _, n := range s.nodes {
			add(n, n.hello)
		}
	case PhaseDeal:
		for _, n := range s.dealers {
			if n.out == "" {
				add(n, n.deal)
			}
		}
	case PhaseComplaints:
		for _, n := range s.recipients {
			if n.out == "" {
				add(n, n.complaints)
			}
		}
	case PhaseJustification:
		for _, n := range s.dealers {
			if n.out == "" && len(s.complainers(n)) > 0 {
				add(n, n.justification)
			}
		}
	case PhaseConfirm:
		for _, n := range s.recipients {
			if s.eligible(n) {
				add(n, n.confirm)
			}
		}
	}
	return in, missing
}

// waiting lists the nodes whose message for the current phase is missing.
func (s *Session) waiting() []*node {
	_, missing := s.expected()
	return missing
}

func (s *Session) abort(format string, args ...any) {
	s.phase = PhaseAborted
	s.reason = fmt.Sprintf(format, args...)
	s.erase()
}

func ids(ns []*node) string {
	var v []string
	for _, n := range ns {
		v = append(v, n.id)
	}
	return strings.Join(v, ", ")
}

func (s *Session) countIn(ns []*node) int {
	c := 0
	for _, n := range ns {
		if n.out == "" {
			c++
		}
	}
	return c
}

func (s *Session) endHello() []Message {
	missing := s.waiting()
	for _, n := range missing {
		n.out = "sent no hello by the deadline"
	}
	if d := s.countIn(s.dealers); d < s.needDeal {
		s.abort("no hello from %s: %d of %d dealers answered, at least %d are needed", ids(missing), d, len(s.dealers), s.needDeal)
		return nil
	}
	if r := s.countIn(s.recipients); r < s.cfg.T {
		s.abort("no hello from %s: %d of %d participants answered, at least t = %d are needed", ids(missing), r, len(s.recipients), s.cfg.T)
		return nil
	}
	s.phase = PhaseDeal
	if s.dealing == nil {
		return nil
	}
	deal := Message{Session: s.id, Kind: KindDeal, Commitments: s.commitments()}
	for _, r := range s.recipients {
		if r.out != "" {
			continue
		}
		v := s.dealing.ShareWithID(idScalar(r.recvIndex)).Value
		ct, err := hpke.Seal(r.hpkeKey, hpkeKDF, hpkeAEAD, shareInfo(s.id, s.self.dealIndex, r.recvIndex), scalarBytes(v))
		if err != nil {
			// Only a broken key can fail: the recipient gets no share and
			// complains; the justification reveals it.
			continue
		}
		deal.Shares = append(deal.Shares, IndexedBytes{Index: r.recvIndex, Data: ct})
	}
	s.self.deal = &deal
	return []Message{deal}
}

func (s *Session) commitments() [][]byte {
	var cs [][]byte
	for _, c := range s.dealing.CommitSecret() {
		cs = append(cs, elementBytes(c))
	}
	return cs
}

func idScalar(x uint16) group.Scalar { return g.NewScalar().SetUint64(uint64(x)) }

// shareInfo is the HPKE info of one sealed share: it binds the session, the
// dealer and the recipient, so a ciphertext cannot be replayed elsewhere.
func shareInfo(id SessionID, dealer, recipient uint16) []byte {
	b := append([]byte("signpost/v1/dkg share\x00"), id[:]...)
	b = binary.BigEndian.AppendUint16(b, dealer)
	return binary.BigEndian.AppendUint16(b, recipient)
}

// parseCommitments checks a dealer's commitments: t elements and, for a
// reshare, C_0 equal to the dealer's current public share.
func (s *Session) parseCommitments(n *node, cs [][]byte) ([]elem, string) {
	if len(cs) != s.cfg.T {
		return nil, fmt.Sprintf("sent %d commitments, t = %d", len(cs), s.cfg.T)
	}
	out := make([]elem, len(cs))
	for i, c := range cs {
		e := g.NewElement()
		if err := e.UnmarshalBinary(c); err != nil {
			return nil, "sent an invalid commitment"
		}
		out[i] = e
	}
	if n.oldKey != nil && !out[0].IsEqual(n.oldKey) {
		return nil, "dealt a secret other than its share of the current key (C_0 ≠ K_i)"
	}
	return out, ""
}

func (s *Session) verifyShare(n *node, v group.Scalar) bool {
	return secretsharing.Verify(uint(s.cfg.T-1), secretsharing.Share{ID: idScalar(s.self.recvIndex), Value: v}, n.commits)
}

func (s *Session) endDeal() []Message {
	// Public checks first: everyone who has a dealer's deal checks its
	// commitments the same way.
	for _, n := range s.dealers {
		if n.out != "" || n.deal == nil {
			continue
		}
		c, why := s.parseCommitments(n, n.deal.Commitments)
		if why != "" {
			n.out = why
			continue
		}
		n.commits = c
	}
	s.phase = PhaseComplaints
	if s.self.recvIndex == 0 {
		return nil
	}
	accused := []uint16{}
	for _, n := range s.dealers {
		if n.out != "" {
			continue
		}
		if v := s.openShare(n); v != nil {
			s.received[n] = v
		} else {
			accused = append(accused, n.dealIndex)
		}
	}
	m := Message{Session: s.id, Kind: KindComplaints, Accused: accused}
	s.self.complaints = &m
	return []Message{m}
}

// openShare decrypts and verifies dealer n's share for this participant;
// nil if it is missing or bad.
func (s *Session) openShare(n *node) group.Scalar {
	if n.deal == nil || n.commits == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(n.deal.Shares, s.self.recvIndex, func(e IndexedBytes, x uint16) int { return int(e.Index) - int(x) })
	if !ok {
		return nil
	}
	pt, err := hpke.Open(s.hpkePriv, hpkeKDF, hpkeAEAD, shareInfo(s.id, n.dealIndex, s.self.recvIndex), n.deal.Shares[i].Data)
	if err != nil {
		return nil
	}
	v := g.NewScalar()
	err = v.UnmarshalBinary(pt)
	clear(pt)
	if err != nil || !s.verifyShare(n, v) {
		return nil
	}
	return v
}

// complainers lists the recipients that complained about dealer n, as far
// as this participant heard.
func (s *Session) complainers(n *node) []*node {
	var c []*node
	for _, r := range s.recipients {
		if r.complaints != nil && slices.Contains(r.complaints.Accused, n.dealIndex) {
			c = append(c, r)
		}
	}
	return c
}

func (s *Session) endComplaints() []Message {
	s.phase = PhaseJustification
	me := s.self
	if me.dealIndex == 0 || me.out != "" || s.dealing == nil {
		return nil
	}
	cs := s.complainers(me)
	if len(cs) == 0 {
		return nil
	}
	slices.SortFunc(cs, func(a, b *node) int { return int(a.recvIndex) - int(b.recvIndex) })
	j := Message{Session: s.id, Kind: KindJustification, Commitments: me.deal.Commitments}
	for _, r := range cs {
		v := s.dealing.ShareWithID(idScalar(r.recvIndex)).Value
		j.Shares = append(j.Shares, IndexedBytes{Index: r.recvIndex, Data: scalarBytes(v)})
	}
	me.justification = &j
	return []Message{j}
}

func (s *Session) endJustification() []Message {
	for _, n := range s.dealers {
		if n.out != "" {
			continue
		}
		cs := s.complainers(n)
		if len(cs) == 0 {
			continue
		}
		n.out = s.judge(n, cs)
	}
	for _, n := range s.dealers {
		if n.out == "" && n.commits == nil {
			n.out = "no deal reached this participant and nobody complained"
		}
	}
	s.qual = nil
	var out []string
	for _, n := range s.dealers {
		if n.out == "" {
			s.qual = append(s.qual, n)
		} else {
			out = append(out, fmt.Sprintf("%s (%s)", n.id, n.out))
		}
	}
	if len(s.qual) < s.needDeal {
		s.abort("%d qualified dealers, at least %d are needed; disqualified: %s", len(s.qual), s.needDeal, strings.Join(out, "; "))
		return nil
	}
	s.computeKey()
	if s.phase == PhaseAborted {
		return nil
	}
	s.phase = PhaseConfirm
	if s.self.recvIndex == 0 || !s.eligible(s.self) {
		return nil
	}
	m := Message{Session: s.id, Kind: KindConfirm, Hash: s.hash}
	s.self.confirm = &m
	return []Message{m}
}

// judge checks dealer n's justification against the complaints cs; it
// returns why n is disqualified, or "" if it stays.
func (s *Session) judge(n *node, cs []*node) string {
	j := n.justification
	if j == nil {
		if n.deal == nil {
			return fmt.Sprintf("sent no deal (complained about by %s) and no justification", ids(cs))
		}
		return fmt.Sprintf("complained about by %s and sent no justification", ids(cs))
	}
	c, why := s.parseCommitments(n, j.Commitments)
	if why != "" {
		return "justification: " + why
	}
	if n.commits == nil {
		n.commits = c
	} else {
		for i := range c {
			if !c[i].IsEqual(n.commits[i]) {
				return "its justification's commitments differ from its deal's (equivocation)"
			}
		}
	}
	for _, r := range cs {
		if _, ok := slices.BinarySearchFunc(j.Shares, r.recvIndex, func(e IndexedBytes, x uint16) int { return int(e.Index) - int(x) }); !ok {
			return fmt.Sprintf("its justification does not answer %s's complaint", r.id)
		}
	}
	var mine group.Scalar
	for _, sh := range j.Shares {
		v := g.NewScalar()
		if err := v.UnmarshalBinary(sh.Data); err != nil {
			return "its justification reveals an invalid scalar"
		}
		ok := secretsharing.Verify(uint(s.cfg.T-1), secretsharing.Share{ID: idScalar(sh.Index), Value: v}, n.commits)
		if !ok {
			return fmt.Sprintf("the share it revealed for index %d does not match its commitments", sh.Index)
		}
		if sh.Index == s.self.recvIndex {
			mine = v
		}
	}
	if s.self.recvIndex != 0 && s.received[n] == nil {
		if mine == nil {
			return "its justification does not reveal this participant's share"
		}
		s.received[n] = mine
	}
	return ""
}

// eligible reports whether recipient n can hold a share of the result: it
// said hello and is not excluded (a disqualified dealer holds nothing).
func (s *Session) eligible(n *node) bool {
	return n.recvIndex != 0 && n.hello != nil && n.hpkeKey != nil && n.out == ""
}

// computeKey derives, from QUAL's commitments, every public share, the
// group key, this participant's share and the confirmation hash.
func (s *Session) computeKey() {
	s.weights = map[*node]group.Scalar{}
	if s.cfg.Reshare == nil {
		for _, n := range s.qual {
			s.weights[n] = g.NewScalar().SetUint64(1)
		}
	} else {
		xs := make([]group.Scalar, len(s.qual))
		for i, n := range s.qual {
			xs[i] = idScalar(n.dealIndex)
		}
		zero := g.NewScalar()
		for i, n := range s.qual {
			s.weights[n] = polynomial.LagrangeBase(uint(i), xs, zero)
		}
	}
	s.groupKey = g.Identity()
	for _, n := range s.qual {
		s.groupKey.Add(s.groupKey, g.NewElement().Mul(n.commits[0], s.weights[n]))
	}
	if s.cfg.Reshare != nil {
		old, _ := decodeElement(s.cfg.Reshare.GroupKey)
		if !s.groupKey.IsEqual(old) {
			s.abort("the reshared key differs from the current group key")
			return
		}
	}
	s.pub = map[*node]elem{}
	for _, r := range s.recipients {
		k := g.Identity()
		x := idScalar(r.recvIndex)
		for _, n := range s.qual {
			k.Add(k, g.NewElement().Mul(evalCommitments(n.commits, x), s.weights[n]))
		}
		s.pub[r] = k
	}
	if s.self.recvIndex != 0 && s.eligible(s.self) {
		sh := g.NewScalar()
		for _, n := range s.qual {
			v := s.received[n]
			if v == nil {
				s.abort("no valid share from qualified dealer %s", n.id)
				return
			}
			sh.Add(sh, g.NewScalar().Mul(v, s.weights[n]))
		}
		if !g.NewElement().MulGen(sh).IsEqual(s.pub[s.self]) {
			s.abort("this participant's share does not match its public share")
			return
		}
		s.share = sh
	}
	h := sha256.New()
	h.Write([]byte("signpost/v1/dkg confirm\x00"))
	h.Write(s.id[:])
	for _, n := range s.qual {
		h.Write(binary.BigEndian.AppendUint16(nil, n.dealIndex))
		for _, c := range n.commits {
			h.Write(elementBytes(c))
		}
	}
	s.hash = h.Sum(nil)
	s.releaseDealing()
}

// evalCommitments is Σ_l C_l·x^l (Horner): the public image of the
// committed polynomial at x.
func evalCommitments(cs []elem, x group.Scalar) elem {
	sum := g.NewElement().Set(cs[len(cs)-1])
	for l := len(cs) - 2; l >= 0; l-- {
		sum.Mul(sum, x)
		sum.Add(sum, cs[l])
	}
	return sum
}

func (s *Session) endConfirm() {
	var differ []string
	for _, n := range s.recipients {
		if s.eligible(n) && n.confirm != nil && !bytes.Equal(n.confirm.Hash, s.hash) {
			differ = append(differ, n.id)
		}
	}
	if len(differ) > 0 {
		s.abort("the confirmation of %s differs from this participant's: a dealer sent different commitments to different participants, or participants saw different complaints; the key must not be used",
			strings.Join(differ, ", "))
		return
	}
	s.holders = nil
	for _, r := range s.recipients {
		if s.eligible(r) && r.confirm != nil {
			s.holders = append(s.holders, r)
		}
	}
	if len(s.holders) < s.cfg.T {
		s.abort("%d participants confirmed the key, at least t = %d are needed (unconfirmed: %s)", len(s.holders), s.cfg.T, ids(s.unconfirmed()))
		return
	}
	if !slices.Contains(s.holders, s.self) && s.share != nil {
		s.share = nil
	}
	s.phase = PhaseDone
}

func (s *Session) unconfirmed() []*node {
	var u []*node
	for _, r := range s.recipients {
		if s.eligible(r) && r.confirm == nil {
			u = append(u, r)
		}
	}
	return u
}

// releaseDealing drops this participant's polynomial once no justification
// can need it any more.
func (s *Session) releaseDealing() {
	s.dealing = nil
	for k, v := range s.received {
		v.SetUint64(0)
		delete(s.received, k)
	}
}

// erase drops every secret the session holds: its polynomial, the shares
// it received, its HPKE key and its share of the key.
func (s *Session) erase() {
	s.releaseDealing()
	s.hpkePriv = nil
	if s.share != nil {
		s.share.SetUint64(0)
		s.share = nil
	}
}

// Close erases the session's secrets (call it once Result's share is
// stored, or when abandoning the session). Result's share is a copy and is
// not touched.
func (s *Session) Close() { s.erase() }

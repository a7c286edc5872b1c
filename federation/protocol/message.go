package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/signpost-federation/signpost/locator"
)

// WireVersion is the first byte of every message.
const WireVersion = 1

// AEHops in a Want or Entries message marks the anti-entropy class: entries
// that arrive this way are not forwarded.
const AEHops = 255

// Kind is a message type.
type Kind uint8

// Message kinds.
const (
	// KindEntries carries full entries: eager push (Hops < AEHops) or a
	// transfer (reply to Want, or anti-entropy push of what a peer lacks).
	KindEntries Kind = iota + 1
	// KindHave announces stamps of fresh versions (lazy push by relays).
	KindHave
	// KindWant asks for entries by id.
	KindWant
	// KindNodes carries digest buckets at one level of the tree.
	KindNodes
	// KindStamps carries the sender's stamps in an id range of one bucket.
	KindStamps
	kindEnd
)

func (k Kind) String() string {
	switch k {
	case KindEntries:
		return "entries"
	case KindHave:
		return "have"
	case KindWant:
		return "want"
	case KindNodes:
		return "nodes"
	case KindStamps:
		return "stamps"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ErrBadMessage is wrapped by every decoding error.
var ErrBadMessage = errors.New("protocol: bad message")

// Node is one digest bucket in a KindNodes message.
type Node struct {
	Index  uint32
	Bucket locator.Bucket
}

// Message is the decoded form of every message; which fields are meaningful
// depends on Kind:
//
//	Entries: Session, Hops, Entries
//	Have:    Hops, Stamps
//	Want:    Session, Hops, IDs
//	Nodes:   Session, Depth, Level, Nodes
//	Stamps:  Session, Depth, Level, Index, From, To, Stamps
//
// Layout: version(1) kind(1) then, per kind, the fields above in that order,
// fixed-width big-endian integers, lists as count(2) then items; an entry
// item is length(2) ‖ canonical encoding; a stamp is id(32) version(8)
// flags(1) hash(16); a node is index(4) hash(16) count(4).
type Message struct {
	Kind    Kind
	Session uint64
	Hops    uint8
	Depth   uint8
	Level   uint8
	Index   uint32
	From    locator.ID
	To      locator.ID
	// Entries holds raw encodings; the engine decodes each separately so
	// that one bad entry is counted and the rest still apply.
	Entries [][]byte
	Stamps  []locator.Stamp
	IDs     []locator.ID
	Nodes   []Node
}

// Sizes used to budget messages.
const (
	headerLen    = 2
	stampLen     = 32 + 8 + 1 + 16
	nodeLen      = 4 + 16 + 4
	idLen        = 32
	maxListItems = 1<<16 - 1
)

// Encode returns the wire form of m.
func (m *Message) Encode() []byte {
	b := make([]byte, 0, m.encodedLen())
	b = append(b, WireVersion, byte(m.Kind))
	switch m.Kind {
	case KindEntries:
		b = binary.BigEndian.AppendUint64(b, m.Session)
		b = append(b, m.Hops)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Entries)))
		for _, e := range m.Entries {
			b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		}
	case KindHave:
		b = append(b, m.Hops)
		b = appendStamps(b, m.Stamps)
	case KindWant:
		b = binary.BigEndian.AppendUint64(b, m.Session)
		b = append(b, m.Hops)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.IDs)))
		for _, id := range m.IDs {
			b = append(b, id[:]...)
		}
	case KindNodes:
		b = binary.BigEndian.AppendUint64(b, m.Session)
		b = append(b, m.Depth, m.Level)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Nodes)))
		for _, n := range m.Nodes {
			b = binary.BigEndian.AppendUint32(b, n.Index)
			b = append(b, n.Bucket.Hash[:]...)
			b = binary.BigEndian.AppendUint32(b, n.Bucket.Count)
		}
	case KindStamps:
		b = binary.BigEndian.AppendUint64(b, m.Session)
		b = append(b, m.Depth, m.Level)
		b = binary.BigEndian.AppendUint32(b, m.Index)
		b = append(b, m.From[:]...)
		b = append(b, m.To[:]...)
		b = appendStamps(b, m.Stamps)
	}
	return b
}

func (m *Message) encodedLen() int {
	n := headerLen + 8 + 1 + 2 + 2 + 4 + 64 + 2
	for _, e := range m.Entries {
		n += 2 + len(e)
	}
	return n + len(m.Stamps)*stampLen + len(m.IDs)*idLen + len(m.Nodes)*nodeLen
}

func appendStamps(b []byte, ss []locator.Stamp) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(ss)))
	for _, s := range ss {
		b = append(b, s.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, s.Version)
		var f byte
		if s.Deleted {
			f = 1
		}
		b = append(b, f)
		b = append(b, s.Hash[:]...)
	}
	return b
}

// reader is a bounds-checked cursor; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("truncated: need %d bytes, have %d: %w", n, len(r.b), ErrBadMessage)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() int {
	if b := r.take(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// count reads a list length and checks that the rest of the message can
// hold that many items of at least min bytes, so that a forged count cannot
// make the decoder allocate more than the message's own size.
func (r *reader) count(min int) int {
	n := r.u16()
	if r.err == nil && n*min > len(r.b) {
		r.err = fmt.Errorf("list of %d items cannot fit in %d bytes: %w", n, len(r.b), ErrBadMessage)
		return 0
	}
	return n
}

func (r *reader) stamps() []locator.Stamp {
	n := r.count(stampLen)
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]locator.Stamp, n)
	for i := range out {
		copy(out[i].ID[:], r.take(32))
		out[i].Version = r.u64()
		switch r.u8() {
		case 0:
		case 1:
			out[i].Deleted = true
		default:
			if r.err == nil {
				r.err = fmt.Errorf("stamp flags: %w", ErrBadMessage)
			}
		}
		copy(out[i].Hash[:], r.take(16))
	}
	return out
}

// DecodeMessage parses a message of at most maxSize bytes. It never panics
// and allocates at most in proportion to len(b); entries inside are left
// encoded (see Message.Entries) but bounded by locator.MaxEncodedSize.
// Errors wrap ErrBadMessage.
func DecodeMessage(b []byte, maxSize int) (*Message, error) {
	if len(b) > maxSize {
		return nil, fmt.Errorf("message of %d bytes exceeds %d: %w", len(b), maxSize, ErrBadMessage)
	}
	r := &reader{b: b}
	if v := r.u8(); r.err == nil && v != WireVersion {
		return nil, fmt.Errorf("wire version %d: %w", v, ErrBadMessage)
	}
	m := &Message{Kind: Kind(r.u8())}
	switch m.Kind {
	case KindEntries:
		m.Session = r.u64()
		m.Hops = r.u8()
		n := r.count(2)
		if n > 0 {
			m.Entries = make([][]byte, 0, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			l := r.u16()
			if l > locator.MaxEncodedSize {
				r.err = fmt.Errorf("entry of %d bytes: %w", l, ErrBadMessage)
				break
			}
			if e := r.take(l); e != nil {
				m.Entries = append(m.Entries, e)
			}
		}
	case KindHave:
		m.Hops = r.u8()
		m.Stamps = r.stamps()
	case KindWant:
		m.Session = r.u64()
		m.Hops = r.u8()
		n := r.count(idLen)
		if n > 0 {
			m.IDs = make([]locator.ID, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			copy(m.IDs[i][:], r.take(idLen))
		}
	case KindNodes:
		m.Session = r.u64()
		m.Depth, m.Level = r.u8(), r.u8()
		n := r.count(nodeLen)
		if n > 0 {
			m.Nodes = make([]Node, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			m.Nodes[i].Index = r.u32()
			copy(m.Nodes[i].Bucket.Hash[:], r.take(16))
			m.Nodes[i].Bucket.Count = r.u32()
		}
	case KindStamps:
		m.Session = r.u64()
		m.Depth, m.Level = r.u8(), r.u8()
		m.Index = r.u32()
		copy(m.From[:], r.take(32))
		copy(m.To[:], r.take(32))
		m.Stamps = r.stamps()
	default:
		if r.err == nil {
			return nil, fmt.Errorf("unknown kind %d: %w", m.Kind, ErrBadMessage)
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode %s message: %w", m.Kind, r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("decode %s message: %d trailing bytes: %w", m.Kind, len(r.b), ErrBadMessage)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("decode %s message: %w", m.Kind, err)
	}
	return m, nil
}

// validate checks the tree coordinates of Nodes and Stamps messages.
func (m *Message) validate() error {
	switch m.Kind {
	case KindNodes, KindStamps:
		if m.Depth < 1 || m.Depth > locator.MaxDigestDepth || m.Level > m.Depth {
			return fmt.Errorf("depth %d level %d: %w", m.Depth, m.Level, ErrBadMessage)
		}
		limit := uint32(1) << (4 * uint(m.Level))
		if m.Kind == KindStamps && m.Index >= limit {
			return fmt.Errorf("bucket index %d at level %d: %w", m.Index, m.Level, ErrBadMessage)
		}
		for _, n := range m.Nodes {
			if n.Index >= limit {
				return fmt.Errorf("bucket index %d at level %d: %w", n.Index, m.Level, ErrBadMessage)
			}
		}
	}
	return nil
}

// Classify returns a message's kind and whether it belongs to anti-entropy
// (as opposed to push) without decoding it, for harnesses that account
// traffic by class; ok is false when msg is too short or not of this wire
// version. The classes are those of Stats.
func Classify(msg []byte) (kind Kind, antiEntropy, ok bool) {
	if len(msg) < headerLen || msg[0] != WireVersion {
		return 0, false, false
	}
	kind = Kind(msg[1])
	switch kind {
	case KindNodes, KindStamps:
		return kind, true, true
	case KindEntries, KindWant:
		// version(1) kind(1) session(8) hops(1)
		if len(msg) < headerLen+9 {
			return kind, false, false
		}
		return kind, msg[headerLen+8] == AEHops, true
	case KindHave:
		return kind, false, true
	}
	return kind, false, false
}

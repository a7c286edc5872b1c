package dkg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Kind is a message's round.
type Kind uint8

// The five rounds, in order.
const (
	KindHello Kind = iota + 1
	KindDeal
	KindComplaints
	KindJustification
	KindConfirm
)

func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindDeal:
		return "deal"
	case KindComplaints:
		return "complaints"
	case KindJustification:
		return "justification"
	case KindConfirm:
		return "confirm"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const (
	messageMagic = "SPKM1"
	// hpkeKeySize is an X25519 public key; sealedShareSize is one HPKE
	// ciphertext of a share: the 32-byte encapsulated key, the 32-byte
	// scalar and the 16-byte Poly1305 tag.
	hpkeKeySize     = 32
	sealedShareSize = 32 + scalarSize + 16
	hashSize        = 32
	// MaxMessageSize bounds every encoded message (the largest is a Hello
	// with the largest config): transports refuse bigger bodies before
	// decoding.
	MaxMessageSize = len(messageMagic) + 1 + 32 + 2 + maxConfigSize + hpkeKeySize
)

// ErrMalformed is wrapped by DecodeMessage for every input it refuses.
var ErrMalformed = errors.New("dkg: malformed message")

// IndexedBytes is a value addressed to one participant by Shamir index: a
// sealed share in a Deal, a revealed share in a Justification.
type IndexedBytes struct {
	Index uint16
	Data  []byte
}

// Message is one broadcast of a session: every message goes to every other
// participant of the session (Session.Peers). Which fields are set depends
// on Kind.
type Message struct {
	Session SessionID
	Kind    Kind
	// Hello: the session's canonical config and the sender's HPKE key.
	Config  []byte
	HPKEKey []byte
	// Deal and Justification: the dealer's Feldman commitments (t elements).
	Commitments [][]byte
	// Deal: one HPKE ciphertext per recipient; Justification: the revealed
	// share (a scalar) of each complainer. Sorted by index, unique.
	Shares []IndexedBytes
	// Complaints: the indices of the dealers complained about (sorted,
	// unique, possibly none).
	Accused []uint16
	// Confirm: the hash of (QUAL, commitments) the sender computed.
	Hash []byte
}

// Encode returns the canonical encoding: "SPKM1", u8 kind, the 32-byte
// session id, then per kind — Hello: u16-length config, 32-byte HPKE key;
// Deal: u8 count and commitments, u8 count and per share u16 index and an
// 80-byte ciphertext; Complaints: u8 count and u16 indices; Justification:
// u8 count and commitments, u8 count and per share u16 index and a 32-byte
// scalar; Confirm: 32-byte hash.
func (m *Message) Encode() []byte {
	b := make([]byte, 0, 64+len(m.Config)+len(m.Commitments)*32+len(m.Shares)*84)
	b = append(b, messageMagic...)
	b = append(b, byte(m.Kind))
	b = append(b, m.Session[:]...)
	switch m.Kind {
	case KindHello:
		b = appendBytes16(b, m.Config)
		b = append(b, m.HPKEKey...)
	case KindDeal, KindJustification:
		b = append(b, byte(len(m.Commitments)))
		for _, c := range m.Commitments {
			b = append(b, c...)
		}
		b = append(b, byte(len(m.Shares)))
		for _, s := range m.Shares {
			b = binary.BigEndian.AppendUint16(b, s.Index)
			b = append(b, s.Data...)
		}
	case KindComplaints:
		b = append(b, byte(len(m.Accused)))
		for _, x := range m.Accused {
			b = binary.BigEndian.AppendUint16(b, x)
		}
	case KindConfirm:
		b = append(b, m.Hash...)
	}
	return b
}

// DecodeMessage parses one message strictly: known kind, bounded counts,
// canonical group elements and scalars, sorted unique indices, exact sizes,
// and an encoding that is the canonical one. A Hello's config is decoded
// and validated, and must hash to the message's session id.
func DecodeMessage(b []byte) (*Message, error) {
	m, err := decodeMessage(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return m, nil
}

func decodeMessage(b []byte) (*Message, error) {
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%d bytes exceeds %d", len(b), MaxMessageSize)
	}
	r := reader{b: b}
	if string(r.next(len(messageMagic))) != messageMagic {
		return nil, errors.New("bad magic")
	}
	m := &Message{Kind: Kind(r.u8())}
	copy(m.Session[:], r.next(len(m.Session)))
	switch m.Kind {
	case KindHello:
		m.Config = r.bytes16()
		m.HPKEKey = r.next(hpkeKeySize)
	case KindDeal, KindJustification:
		nc := int(r.u8())
		if nc > MaxParticipants {
			return nil, fmt.Errorf("%d commitments, max %d", nc, MaxParticipants)
		}
		for range nc {
			if e := r.element(); e != nil {
				m.Commitments = append(m.Commitments, elementBytes(e))
			}
		}
		ns := int(r.u8())
		if ns > MaxParticipants {
			return nil, fmt.Errorf("%d shares, max %d", ns, MaxParticipants)
		}
		for range ns {
			s := IndexedBytes{Index: r.u16()}
			if m.Kind == KindDeal {
				s.Data = r.next(sealedShareSize)
			} else if v := r.scalar(); v != nil {
				s.Data = scalarBytes(v)
			}
			if r.err != nil {
				break
			}
			if s.Index == 0 || len(m.Shares) > 0 && m.Shares[len(m.Shares)-1].Index >= s.Index {
				return nil, errors.New("share indices not sorted, unique and non-zero")
			}
			m.Shares = append(m.Shares, s)
		}
		if r.err == nil && nc == 0 {
			return nil, errors.New("no commitments")
		}
	case KindComplaints:
		n := int(r.u8())
		if n > MaxParticipants {
			return nil, fmt.Errorf("%d complaints, max %d", n, MaxParticipants)
		}
		m.Accused = []uint16{}
		for range n {
			x := r.u16()
			if r.err != nil {
				break
			}
			if x == 0 || len(m.Accused) > 0 && m.Accused[len(m.Accused)-1] >= x {
				return nil, errors.New("accused indices not sorted, unique and non-zero")
			}
			m.Accused = append(m.Accused, x)
		}
	case KindConfirm:
		m.Hash = r.next(hashSize)
	default:
		if r.err == nil {
			return nil, fmt.Errorf("unknown kind %d", m.Kind)
		}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	if m.Kind == KindHello {
		c, err := DecodeConfig(m.Config)
		if err != nil {
			return nil, err
		}
		if c.ID() != m.Session {
			return nil, errors.New("config does not hash to the session id")
		}
	}
	if !bytes.Equal(m.Encode(), b) {
		return nil, errors.New("not in canonical form")
	}
	m.Config = bytes.Clone(m.Config)
	m.HPKEKey = bytes.Clone(m.HPKEKey)
	m.Hash = bytes.Clone(m.Hash)
	m.Accused = slices.Clip(m.Accused)
	for i := range m.Shares {
		m.Shares[i].Data = bytes.Clone(m.Shares[i].Data)
	}
	return m, nil
}

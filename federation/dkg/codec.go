package dkg

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/cloudflare/circl/group"
)

// g is the one group of every key: ristretto255, as RFC 9497's
// OPRF(ristretto255, SHA-512) suite uses.
var g = group.Ristretto255

const (
	// elementSize and scalarSize are ristretto255's encoded sizes.
	elementSize = 32
	scalarSize  = 32
)

var errTruncated = errors.New("truncated")

// reader decodes the package's big-endian, length-prefixed encodings. The
// first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errTruncated
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.next(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.next(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.next(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.next(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (r *reader) str8() string {
	n := int(r.u8())
	return string(r.next(n))
}

func (r *reader) bytes16() []byte {
	n := int(r.u16())
	return r.next(n)
}

// element reads one canonical ristretto255 element; the identity is refused
// (no commitment, public share or group key is ever the identity except
// with negligible probability, and accepting it would let a dealer
// contribute nothing).
func (r *reader) element() group.Element {
	b := r.next(elementSize)
	if b == nil {
		return nil
	}
	e := g.NewElement()
	if err := e.UnmarshalBinary(b); err != nil {
		r.err = errors.New("invalid group element")
		return nil
	}
	return e
}

// scalar reads one canonical (reduced) ristretto255 scalar.
func (r *reader) scalar() group.Scalar {
	b := r.next(scalarSize)
	if b == nil {
		return nil
	}
	s := g.NewScalar()
	if err := s.UnmarshalBinary(b); err != nil {
		r.err = errors.New("invalid scalar")
		return nil
	}
	return s
}

func (r *reader) done() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return errors.New("trailing bytes")
	}
	return nil
}

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

func appendBytes16(b, v []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(v))), v...)
}

func appendElement(b []byte, e group.Element) []byte {
	v, err := e.MarshalBinary()
	if err != nil {
		panic("dkg: marshal element: " + err.Error()) // ristretto255 never fails
	}
	return append(b, v...)
}

func appendScalar(b []byte, s group.Scalar) []byte {
	v, err := s.MarshalBinary()
	if err != nil {
		panic("dkg: marshal scalar: " + err.Error()) // ristretto255 never fails
	}
	return append(b, v...)
}

func elementBytes(e group.Element) []byte { return appendElement(nil, e) }

func scalarBytes(s group.Scalar) []byte { return appendScalar(nil, s) }

func unixMilli(v uint64) time.Time { return time.UnixMilli(int64(v)).UTC() }

// elem is a group element; the alias keeps signatures short.
type elem = group.Element

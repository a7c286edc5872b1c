package abi

import (
	"encoding/binary"
	"errors"
)

// Version is the ABI version this package implements.
const Version = 1

// Limits.
const (
	// MaxMessage bounds a request or response in bytes.
	MaxMessage = 16 << 20
	// MaxItems bounds the number of items in one list.
	MaxItems = 1 << 18
)

// Operations.
const (
	OpValidate   = 1
	OpBlind      = 2
	OpFinalize   = 3
	OpDeriveKeys = 4
	OpSchemes    = 5
	// OpOpenEntries was added to ABI version 1 (additive: older modules
	// answer StatusUnknownOp).
	OpOpenEntries = 6
	// OpValidateCompact was added to ABI version 1 (additive).
	OpValidateCompact = 7
	// OpBlindVerifiable and OpCombine, the threshold token client, were
	// added to ABI version 1 (additive).
	OpBlindVerifiable = 8
	OpCombine         = 9
	// OpCombineVerified, additive to version 1, is OpCombine for partials
	// the caller has verified already (token.CombineVerified): the node,
	// which checks each issuer's answer as it arrives.
	OpCombineVerified = 10
	// OpCombineBlinded, additive to version 1, is OpCombine given each
	// number's blinded element too (token.CombineBlinded): the proofs are
	// checked against them instead of elements derived again.
	OpCombineBlinded = 11
)

// MaxEntries bounds the entries of one OpOpenEntries call.
const MaxEntries = 4096

// Per-entry statuses of OpOpenEntries, equal to package sealed's Reason
// values.
const (
	EntryOK              = 0
	EntryMalformed       = 1
	EntrySealBroken      = 2
	EntryUnknownHolder   = 3
	EntryHolderSignature = 4
)

// Status bytes.
const (
	StatusOK             = 0
	StatusMalformed      = 1
	StatusUnknownOp      = 2
	StatusUnknownScheme  = 3
	StatusInvalidPurpose = 4
	StatusInvalidEpoch   = 5
	StatusBatchSize      = 6
	StatusInvalidNumber  = 7
	StatusEncoding       = 8
	StatusProofInvalid   = 9
	StatusPublicKey      = 10
	StatusMismatch       = 11
	StatusTooLarge       = 12
	StatusInternal       = 13
	StatusTooFewPartials = 14
	StatusKeySet         = 15
)

// ErrMalformed reports a list that does not decode.
var ErrMalformed = errors.New("abi: malformed list")

// AppendList appends the list encoding of items to dst.
func AppendList(dst []byte, items ...[]byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, it := range items {
		dst = binary.AppendUvarint(dst, uint64(len(it)))
		dst = append(dst, it...)
	}
	return dst
}

// Encoder builds a list whose count is known in advance, item by item,
// without collecting the items first.
type Encoder struct{ Buf []byte }

// Begin starts a list of count items.
func (e *Encoder) Begin(count int) { e.Buf = binary.AppendUvarint(e.Buf, uint64(count)) }

// Bytes appends one item.
func (e *Encoder) Bytes(b []byte) {
	e.Buf = binary.AppendUvarint(e.Buf, uint64(len(b)))
	e.Buf = append(e.Buf, b...)
}

// String appends one item.
func (e *Encoder) String(s string) {
	e.Buf = binary.AppendUvarint(e.Buf, uint64(len(s)))
	e.Buf = append(e.Buf, s...)
}

// DecodeList decodes a whole message as one list. The items alias msg.
func DecodeList(msg []byte) ([][]byte, error) { return DecodeListInto(nil, msg) }

// DecodeListInto is DecodeList reusing dst's storage for the item slice.
func DecodeListInto(dst [][]byte, msg []byte) ([][]byte, error) {
	if len(msg) > MaxMessage {
		return nil, ErrMalformed
	}
	count, n := binary.Uvarint(msg)
	if n <= 0 || count > MaxItems || count > uint64(len(msg)) {
		return nil, ErrMalformed
	}
	msg = msg[n:]
	items := dst[:0]
	if uint64(cap(items)) < count {
		items = make([][]byte, count)
	}
	items = items[:count]
	for i := range items {
		l, n := binary.Uvarint(msg)
		if n <= 0 || l > uint64(len(msg)-n) {
			return nil, ErrMalformed
		}
		items[i] = msg[n : n+int(l) : n+int(l)]
		msg = msg[n+int(l):]
	}
	if len(msg) != 0 {
		return nil, ErrMalformed
	}
	return items, nil
}

// Iter walks a list without allocating the item slice; hosts use it to
// decode large validation responses.
type Iter struct {
	msg  []byte
	left int
	err  error
}

// NewIter starts decoding msg, a list.
func NewIter(msg []byte) *Iter {
	it := &Iter{}
	count, n := binary.Uvarint(msg)
	if n <= 0 || count > MaxItems || count > uint64(len(msg)) {
		it.err = ErrMalformed
		return it
	}
	it.msg, it.left = msg[n:], int(count)
	return it
}

// Len is the number of items not yet read.
func (it *Iter) Len() int { return it.left }

// Next returns the next item, or nil and sets Err at the end or on error.
func (it *Iter) Next() []byte {
	if it.err != nil {
		return nil
	}
	if it.left == 0 {
		it.err = ErrMalformed
		return nil
	}
	l, n := binary.Uvarint(it.msg)
	if n <= 0 || l > uint64(len(it.msg)-n) {
		it.err = ErrMalformed
		return nil
	}
	item := it.msg[n : n+int(l) : n+int(l)]
	it.msg = it.msg[n+int(l):]
	it.left--
	return item
}

// Err reports a decoding error, including trailing bytes once every item has
// been read.
func (it *Iter) Err() error {
	if it.err == nil && it.left == 0 && len(it.msg) != 0 {
		return ErrMalformed
	}
	return it.err
}

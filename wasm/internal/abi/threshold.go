package abi

import (
	"errors"
	"fmt"

	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// ErrThresholdEncoding reports a key set or partials item that does not
// decode.
var ErrThresholdEncoding = errors.New("abi: malformed key set or partials")

// KeySet is a decoded key set item of OpCombine: the purpose and epoch it is
// for and the key set itself.
type KeySet struct {
	Purpose string
	Epoch   uint32
	token.KeySet
}

// AppendKeySet appends the key set item of OpCombine: a nested list
// [purpose, epoch, t, groupKey, (index, key)×n] with epoch, t and each index
// in decimal without leading zeros.
func AppendKeySet(dst []byte, ks KeySet) []byte {
	e := Encoder{Buf: dst}
	e.Begin(4 + 2*len(ks.Shares))
	e.String(ks.Purpose)
	e.String(fmt.Sprint(ks.Epoch))
	e.String(fmt.Sprint(ks.T))
	e.Bytes(ks.GroupKey)
	for _, s := range ks.Shares {
		e.String(fmt.Sprint(s.Index))
		e.Bytes(s.Key)
	}
	return e.Buf
}

// DecodeKeySet decodes a key set item. It checks the encoding only (counts,
// decimals, at most token.MaxIssuers shares); token.CheckKeySet checks the
// key set. The key bytes alias b.
func DecodeKeySet(b []byte) (KeySet, error) {
	items, err := DecodeList(b)
	if err != nil || len(items) < 4 || len(items)%2 != 0 {
		return KeySet{}, fmt.Errorf("%w: key set must be purpose, epoch, t, group key and pairs of index and key", ErrThresholdEncoding)
	}
	n := (len(items) - 4) / 2
	if n > token.MaxIssuers {
		return KeySet{}, fmt.Errorf("%w: key set has %d issuers, at most %d", ErrThresholdEncoding, n, token.MaxIssuers)
	}
	epoch, err := token.ParseEpoch(string(items[1]))
	if err != nil {
		return KeySet{}, err
	}
	t, ok := decimal(items[2], token.MaxIssuers)
	if !ok {
		return KeySet{}, fmt.Errorf("%w: threshold must be a decimal between 0 and %d", ErrThresholdEncoding, token.MaxIssuers)
	}
	ks := KeySet{Purpose: string(items[0]), Epoch: epoch, KeySet: token.KeySet{T: t, GroupKey: items[3], Shares: make([]token.PublicShare, n)}}
	for i := range n {
		x, ok := decimal(items[4+2*i], 65535)
		if !ok {
			return KeySet{}, fmt.Errorf("%w: issuer index %d is not a decimal up to 65535", ErrThresholdEncoding, i)
		}
		ks.Shares[i] = token.PublicShare{Index: uint16(x), Key: items[5+2*i]}
	}
	return ks, nil
}

// AppendPartials appends the partials item of OpCombine: a nested list with
// one item per partial, itself a nested list [index, proof, evaluated×n].
func AppendPartials(dst []byte, ps []token.Partial) []byte {
	e := Encoder{Buf: dst}
	e.Begin(len(ps))
	var p []byte
	for _, pt := range ps {
		f := Encoder{Buf: p[:0]}
		f.Begin(2 + len(pt.Evaluated))
		f.String(fmt.Sprint(pt.Index))
		f.Bytes(pt.Proof)
		for _, z := range pt.Evaluated {
			f.Bytes(z)
		}
		p = f.Buf
		e.Bytes(p)
	}
	return e.Buf
}

// DecodePartials decodes a partials item: at most token.MaxIssuers
// partials of at most token.MaxBatch elements. It checks the encoding only;
// token.Combine checks each partial (and skips a bad one). The element and
// proof bytes alias b.
func DecodePartials(b []byte) ([]token.Partial, error) {
	items, err := DecodeList(b)
	if err != nil {
		return nil, fmt.Errorf("%w: partials must be a list", ErrThresholdEncoding)
	}
	if len(items) > token.MaxIssuers {
		return nil, fmt.Errorf("%w: %d partials, at most %d", ErrThresholdEncoding, len(items), token.MaxIssuers)
	}
	out := make([]token.Partial, len(items))
	for i, it := range items {
		f, err := DecodeList(it)
		if err != nil || len(f) < 2 || len(f)-2 > token.MaxBatch {
			return nil, fmt.Errorf("%w: partial %d must be index, proof and at most %d elements", ErrThresholdEncoding, i, token.MaxBatch)
		}
		x, ok := decimal(f[0], 65535)
		if !ok {
			return nil, fmt.Errorf("%w: partial %d: index is not a decimal up to 65535", ErrThresholdEncoding, i)
		}
		out[i] = token.Partial{Index: uint16(x), Proof: f[1], Evaluated: f[2:]}
	}
	return out, nil
}

// decimal parses a decimal without sign or leading zeros, at most limit.
func decimal(b []byte, limit int) (int, bool) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = 10*v + int(c-'0')
	}
	return v, v <= limit
}

package abi

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unsafe"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/sealed"
)

// Handler serves requests. Its response buffer is reused between calls, so
// a Handler serves one call at a time (as a wasm instance does).
type Handler struct {
	// Rand is the source of blinds: crypto/rand.Reader, which inside the
	// module is WASI random_get, which the host must back with a
	// cryptographic source.
	Rand  io.Reader
	out   []byte
	items [][]byte // reused request item slice
}

// Handle runs one operation and returns the response (status byte and
// payload). It never panics: a panic is recovered into [StatusInternal].
// The returned slice is valid until the next call.
func (h *Handler) Handle(op int32, req []byte) (resp []byte) {
	h.out = h.out[:0]
	defer func() {
		if r := recover(); r != nil {
			resp = append(h.out[:0], StatusInternal)
			resp = append(resp, "internal error in module"...)
			h.out = resp
		}
	}()
	if len(req) > MaxMessage {
		return h.fail(StatusTooLarge, "request too large")
	}
	items, err := DecodeListInto(h.items, req)
	if cap(items) <= 1<<16 {
		h.items = items[:0]
	}
	if err != nil {
		return h.fail(StatusMalformed, "malformed request list")
	}
	h.out = append(h.out, StatusOK)
	switch op {
	case OpValidate:
		return h.validate(items)
	case OpBlind:
		return h.blind(items)
	case OpFinalize:
		return h.finalize(items)
	case OpDeriveKeys:
		return h.deriveKeys(items)
	case OpSchemes:
		return h.schemes(items)
	case OpOpenEntries:
		return h.openEntries(items)
	case OpValidateCompact:
		return h.validateCompact(items)
	case OpBlindVerifiable:
		return h.blindVerifiable(items)
	case OpCombine, OpCombineVerified, OpCombineBlinded:
		return h.combine(op, items)
	}
	return h.fail(StatusUnknownOp, "unknown operation "+strconv.Itoa(int(op)))
}

func (h *Handler) fail(status byte, msg string) []byte {
	h.out = append(h.out[:0], status)
	h.out = append(h.out, msg...)
	return h.out
}

func (h *Handler) failErr(err error) []byte {
	status := StatusOf(err)
	if status == StatusInternal {
		return h.fail(status, "token operation failed")
	}
	return h.fail(status, err.Error())
}

// tokenStatuses pairs each of package token's sentinels with the status
// that reports it. The host maps the statuses back to its own sentinels.
var tokenStatuses = []struct {
	err    error
	status byte
}{
	{token.ErrInvalidPurpose, StatusInvalidPurpose},
	{token.ErrInvalidEpoch, StatusInvalidEpoch},
	{token.ErrBatchSize, StatusBatchSize},
	{token.ErrMismatch, StatusMismatch},
	{token.ErrEncoding, StatusEncoding},
	{token.ErrProofInvalid, StatusProofInvalid},
	{token.ErrPublicKey, StatusPublicKey},
	{token.ErrTooFewPartials, StatusTooFewPartials},
	{token.ErrKeySet, StatusKeySet},
}

// StatusOf returns the status that reports err, an error of package token
// (or one wrapping it), and [StatusInternal] for any other error. The
// native issuer uses it too, so that a token error means the same in and
// out of the module.
func StatusOf(err error) byte {
	for _, ts := range tokenStatuses {
		if errors.Is(err, ts.err) {
			return ts.status
		}
	}
	return StatusInternal
}

// bytesAsString views b as a string without copying. Check does not retain
// its input and b is not modified during the call.
func bytesAsString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// leadingScheme looks up the scheme that begins the request of op
// (validate, blind and finalize requests start with one). A non-nil failed
// is the response to return instead.
func (h *Handler) leadingScheme(op string, items [][]byte) (s ident.Scheme, failed []byte) {
	if len(items) < 1 {
		return nil, h.fail(StatusMalformed, op+" needs a scheme")
	}
	s, ok := ident.Lookup(string(items[0]))
	if !ok {
		return nil, h.fail(StatusUnknownScheme, "unknown scheme")
	}
	return s, nil
}

func (h *Handler) validate(items [][]byte) []byte {
	s, failed := h.leadingScheme("validate", items)
	if failed != nil {
		return failed
	}
	inputs := items[1:]
	e := Encoder{Buf: h.out}
	e.Begin(1 + 6*len(inputs))
	e.String(s.System())
	var o ident.Outcome
	for _, in := range inputs {
		s.Check(bytesAsString(in), &o)
		if o.Valid {
			e.String("1")
		} else {
			e.String("")
		}
		e.Bytes(o.Normalized())
		e.Bytes(o.Formatted())
		e.String(string(o.Code))
		e.String(o.Reason)
		e.String(o.Range)
	}
	h.out = e.Buf
	return h.out
}

// tokenInputs validates numbers under a scheme and returns the token inputs.
func (h *Handler) tokenInputs(s ident.Scheme, numbers [][]byte) ([][]byte, []byte) {
	inputs := make([][]byte, len(numbers))
	for i, n := range numbers {
		r := s.Validate(string(n))
		if !r.Valid {
			return nil, h.fail(StatusInvalidNumber, fmt.Sprintf("item %d is not a valid number (%s)", i, r.Code))
		}
		inputs[i] = ident.TokenInput(s, r.Normalized)
	}
	return inputs, nil
}

func (h *Handler) blind(items [][]byte) []byte {
	return h.blindWith("blind", token.Blind, items)
}

// blindVerifiable is OpBlind in VOPRF mode, for the threshold client.
func (h *Handler) blindVerifiable(items [][]byte) []byte {
	return h.blindWith("blind verifiable", token.BlindVerifiable, items)
}

func (h *Handler) blindWith(op string, blind func(io.Reader, [][]byte) ([][]byte, [][]byte, error), items [][]byte) []byte {
	s, failed := h.leadingScheme(op, items)
	if failed != nil {
		return failed
	}
	numbers := items[1:]
	if len(numbers) == 0 || len(numbers) > token.MaxBatch {
		return h.failErr(token.ErrBatchSize)
	}
	inputs, failed := h.tokenInputs(s, numbers)
	if failed != nil {
		return failed
	}
	blinds, blinded, err := blind(h.Rand, inputs)
	if err != nil {
		return h.failErr(err)
	}
	e := Encoder{Buf: h.out}
	e.Begin(2 * len(blinds))
	for i := range blinds {
		e.Bytes(blinds[i])
		e.Bytes(blinded[i])
	}
	h.out = e.Buf
	return h.out
}

func (h *Handler) finalize(items [][]byte) []byte {
	if len(items) < 5 || (len(items)-5)%3 != 0 {
		return h.fail(StatusMalformed, "finalize needs scheme, purpose, epoch, public key, proof and triples")
	}
	s, failed := h.leadingScheme("finalize", items)
	if failed != nil {
		return failed
	}
	epoch, err := token.ParseEpoch(string(items[2]))
	if err != nil {
		return h.failErr(err)
	}
	info, err := token.Info(string(items[1]), epoch)
	if err != nil {
		return h.failErr(err)
	}
	n := (len(items) - 5) / 3
	if n == 0 || n > token.MaxBatch {
		return h.failErr(token.ErrBatchSize)
	}
	numbers := make([][]byte, n)
	blinds := make([][]byte, n)
	evaluated := make([][]byte, n)
	for i := range n {
		numbers[i], blinds[i], evaluated[i] = items[5+3*i], items[6+3*i], items[7+3*i]
	}
	inputs, failed := h.tokenInputs(s, numbers)
	if failed != nil {
		return failed
	}
	toks, err := token.Finalize(items[3], info, inputs, blinds, evaluated, items[4])
	if err != nil {
		return h.failErr(err)
	}
	e := Encoder{Buf: h.out}
	e.Begin(3 * n)
	for _, t := range toks {
		l, s := token.DeriveKeys(t)
		e.Bytes(t)
		e.Bytes(l[:])
		e.Bytes(s[:])
	}
	h.out = e.Buf
	return h.out
}

// combine is the threshold client's last step: request [scheme, keySet,
// partials, (number, blind)×n] — (number, blind, blinded)×n for
// OpCombineBlinded — response as OpFinalize's. keySet and partials are
// nested lists (see [DecodeKeySet] and [DecodePartials]). op picks
// token.Combine, token.CombineVerified or token.CombineBlinded.
func (h *Handler) combine(op int32, items [][]byte) []byte {
	per := 2
	if op == OpCombineBlinded {
		per = 3
	}
	if len(items) < 3 || (len(items)-3)%per != 0 {
		if per == 3 {
			return h.fail(StatusMalformed, "combine needs scheme, key set, partials and triples of number, blind and blinded element")
		}
		return h.fail(StatusMalformed, "combine needs scheme, key set, partials and pairs of number and blind")
	}
	s, failed := h.leadingScheme("combine", items)
	if failed != nil {
		return failed
	}
	ks, err := DecodeKeySet(items[1])
	if err != nil {
		return h.failDecode(err)
	}
	if err := token.ValidatePurpose(ks.Purpose); err != nil {
		return h.failErr(err)
	}
	partials, err := DecodePartials(items[2])
	if err != nil {
		return h.failDecode(err)
	}
	n := (len(items) - 3) / per
	if n == 0 || n > token.MaxBatch {
		return h.failErr(token.ErrBatchSize)
	}
	numbers := make([][]byte, n)
	blinds := make([][]byte, n)
	var blinded [][]byte
	if per == 3 {
		blinded = make([][]byte, n)
	}
	for i := range n {
		numbers[i], blinds[i] = items[3+per*i], items[4+per*i]
		if per == 3 {
			blinded[i] = items[5+per*i]
		}
	}
	inputs, failed := h.tokenInputs(s, numbers)
	if failed != nil {
		return failed
	}
	var toks [][]byte
	switch op {
	case OpCombineVerified:
		toks, err = token.CombineVerified(ks.KeySet, inputs, blinds, partials)
	case OpCombineBlinded:
		toks, err = token.CombineBlinded(ks.KeySet, inputs, blinds, blinded, partials)
	default:
		toks, err = token.Combine(ks.KeySet, inputs, blinds, partials)
	}
	if err != nil {
		return h.failErr(err)
	}
	e := Encoder{Buf: h.out}
	e.Begin(3 * n)
	for _, t := range toks {
		l, s := token.DeriveKeys(t)
		e.Bytes(t)
		e.Bytes(l[:])
		e.Bytes(s[:])
	}
	h.out = e.Buf
	return h.out
}

// failDecode reports a key set or partials decoding error: a token error
// (an invalid epoch) under its status, anything else as malformed.
func (h *Handler) failDecode(err error) []byte {
	if status := StatusOf(err); status != StatusInternal {
		return h.fail(status, err.Error())
	}
	return h.fail(StatusMalformed, err.Error())
}

func (h *Handler) deriveKeys(items [][]byte) []byte {
	if len(items) > token.MaxBatch {
		return h.failErr(token.ErrBatchSize)
	}
	e := Encoder{Buf: h.out}
	e.Begin(2 * len(items))
	for _, t := range items {
		l, s := token.DeriveKeys(t)
		e.Bytes(l[:])
		e.Bytes(s[:])
	}
	h.out = e.Buf
	return h.out
}

func (h *Handler) schemes(items [][]byte) []byte {
	if len(items) != 0 {
		return h.fail(StatusMalformed, "schemes takes no arguments")
	}
	all := ident.Schemes()
	e := Encoder{Buf: h.out}
	e.Begin(2 * len(all))
	for _, s := range all {
		e.String(s.Name())
		e.String(s.System())
	}
	h.out = e.Buf
	return h.out
}

// openEntries opens a batch of entries under one seal key and checks each
// holder signature against the members given. Request items: sealKey (32
// bytes), members (a nested list of nodeId, publicKey(32) pairs), then the
// canonical entry encodings. Per entry the response has five items: status
// (one byte, Entry*), nodeId, category, registeredAt (8 bytes, big-endian
// Unix seconds) and flags ("1" for a tombstone); all but status are empty
// when status is not EntryOK.
func (h *Handler) openEntries(items [][]byte) []byte {
	if len(items) < 2 {
		return h.fail(StatusMalformed, "open entries needs a seal key and members")
	}
	if len(items[0]) != 32 {
		return h.fail(StatusMalformed, "seal key must be 32 bytes")
	}
	var key [32]byte
	copy(key[:], items[0])
	ms, err := DecodeList(items[1])
	if err != nil || len(ms)%2 != 0 {
		return h.fail(StatusMalformed, "members must be a list of node id and public key pairs")
	}
	members := make(map[string]ed25519.PublicKey, len(ms)/2)
	for i := 0; i < len(ms); i += 2 {
		if len(ms[i]) == 0 || len(ms[i]) > sealed.MaxNodeIDLen || len(ms[i+1]) != ed25519.PublicKeySize {
			return h.fail(StatusMalformed, "member "+strconv.Itoa(i/2)+": node id of 1..128 bytes and a 32-byte public key expected")
		}
		members[string(ms[i])] = ed25519.PublicKey(ms[i+1])
	}
	keys := func(nodeID string) (ed25519.PublicKey, bool) {
		k, ok := members[nodeID]
		return k, ok
	}
	entries := items[2:]
	if len(entries) > MaxEntries {
		return h.fail(StatusBatchSize, "at most "+strconv.Itoa(MaxEntries)+" entries per call")
	}
	e := Encoder{Buf: h.out}
	e.Begin(5 * len(entries))
	var reg [8]byte
	for _, enc := range entries {
		o, err := sealed.OpenEntry(key, enc, keys)
		if err != nil {
			status := byte(EntryMalformed)
			var se *sealed.Error
			if errors.As(err, &se) {
				status = byte(se.Reason)
			}
			e.Bytes([]byte{status})
			e.Bytes(nil)
			e.Bytes(nil)
			e.Bytes(nil)
			e.Bytes(nil)
			continue
		}
		e.Bytes([]byte{EntryOK})
		flags := ""
		if o.Withdrawn {
			flags = "1"
		}
		if o.Shield.Shielded() {
			e.String(o.Shield.Broker)
			e.Bytes(o.Shield.Inner)
			flags += "s"
		} else {
			e.String(o.NodeID)
			e.String(o.Category)
		}
		binary.BigEndian.PutUint64(reg[:], uint64(o.RegisteredAt))
		e.Bytes(reg[:])
		e.String(flags)
	}
	h.out = e.Buf
	return h.out
}

// codeIndex maps a reason code to 1 + its index in ident.AllCodes.
var codeIndex = func() map[ident.Code]byte {
	m := make(map[ident.Code]byte, len(ident.AllCodes))
	for i, c := range ident.AllCodes {
		m[c] = byte(i + 1)
	}
	return m
}()

// validateCompact is OpValidate with one packed item for all results
// instead of six items per input: per input, flags(1: bit 0 valid),
// code(1: 0 none, else 1 + index in ident.AllCodes), then len(1)-prefixed
// normalized, formatted and range, then uvarint-prefixed reason.
func (h *Handler) validateCompact(items [][]byte) []byte {
	s, failed := h.leadingScheme("validate", items)
	if failed != nil {
		return failed
	}
	if len(ident.AllCodes) > 255 {
		return h.fail(StatusInternal, "too many codes")
	}
	inputs := items[1:]
	b := binary.AppendUvarint(h.out, 2)
	b = binary.AppendUvarint(b, uint64(len(s.System())))
	b = append(b, s.System()...)
	// The packed item's length is patched in once known: reserve a
	// fixed-width uvarint (5 bytes holds any message size).
	at := len(b)
	b = append(b, 0x80, 0x80, 0x80, 0x80, 0)
	start := len(b)
	var o ident.Outcome
	for _, in := range inputs {
		s.Check(bytesAsString(in), &o)
		var flags byte
		if o.Valid {
			flags = 1
		}
		b = append(b, flags, codeIndex[o.Code])
		n, f := o.Normalized(), o.Formatted()
		b = append(b, byte(len(n)))
		b = append(b, n...)
		b = append(b, byte(len(f)))
		b = append(b, f...)
		b = append(b, byte(len(o.Range)))
		b = append(b, o.Range...)
		b = binary.AppendUvarint(b, uint64(len(o.Reason)))
		b = append(b, o.Reason...)
	}
	n := uint32(len(b) - start)
	b[at], b[at+1], b[at+2], b[at+3], b[at+4] = byte(n)|0x80, byte(n>>7)|0x80, byte(n>>14)|0x80, byte(n>>21)|0x80, byte(n>>28)
	h.out = b
	return h.out
}

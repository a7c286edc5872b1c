package sealed

import "encoding/binary"

// Entry encoding constants (locator's version-1 canonical encoding; see
// package locator for the whole format and its signature). ReadEntry needs
// only the layout, and locator's tests check that ReadEntry agrees with
// locator.DecodeEntry.
const (
	entryFormatV1    = 1
	entryHeaderSize  = 1 + 16 + 32 + 8 + 8 + 1 + 2 + 64
	entryFlagDeleted = 1
	// MaxEntrySize is locator.MaxEncodedSize: no entry is larger.
	MaxEntrySize = 4096
)

// EntryView is what a reader needs of an entry to open it. Sealed aliases
// the encoding it was read from.
type EntryView struct {
	Lookup   [16]byte
	EntryPub [32]byte
	Deleted  bool
	Sealed   []byte
}

// ReadEntry reads the fields a reader needs from a canonical locator entry
// encoding, with the same bounds as locator.DecodeEntry (size, format byte,
// flags, exact length). It does not verify the entry signature. Errors are
// [*Error] with ReasonMalformed.
func ReadEntry(enc []byte) (EntryView, error) {
	switch {
	case len(enc) > MaxEntrySize:
		return EntryView{}, fail(ReasonMalformed, "entry too large")
	case len(enc) < entryHeaderSize:
		return EntryView{}, fail(ReasonMalformed, "entry truncated")
	case enc[0] != entryFormatV1:
		return EntryView{}, fail(ReasonMalformed, "unknown entry format")
	}
	var v EntryView
	p := enc[1:]
	copy(v.Lookup[:], p[:16])
	copy(v.EntryPub[:], p[16:48])
	flags := p[64]
	if flags&^entryFlagDeleted != 0 {
		return EntryView{}, fail(ReasonMalformed, "unknown entry flags")
	}
	v.Deleted = flags&entryFlagDeleted != 0
	n := int(binary.BigEndian.Uint16(p[65:67]))
	if rest := p[67:]; len(rest) != n+64 {
		return EntryView{}, fail(ReasonMalformed, "entry length does not match its sealed part")
	}
	v.Sealed = p[67 : 67+n : 67+n]
	return v, nil
}

// Opened is an entry that opened and verified.
type Opened struct {
	Identity
	// Withdrawn is true when the entry is a tombstone.
	Withdrawn bool
	// Shield names the broker of a shielded entry (Identity then carries
	// only RegisteredAt); its Broker is "" otherwise.
	Shield Shield
}

// OpenEntry reads a canonical entry encoding, opens its sealed part with
// key and checks the holder signature against keys. It does not check the
// entry's outer signature (see the package doc). Errors are [*Error].
func OpenEntry(key [32]byte, enc []byte, keys NodeKeys) (Opened, error) {
	v, err := ReadEntry(enc)
	if err != nil {
		return Opened{}, err
	}
	id, sh, err := OpenVerify(key, v.Lookup, v.EntryPub, v.Sealed, keys)
	if err != nil {
		return Opened{}, err
	}
	return Opened{Identity: id, Withdrawn: v.Deleted, Shield: sh}, nil
}

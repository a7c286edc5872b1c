package ident

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// UPN is the Department for Education's Unique Pupil Number: thirteen
// characters, a check letter followed by twelve characters (local authority
// code, establishment, year of issue, serial). A permanent UPN ends in a
// digit; a temporary one ends in a letter. The check letter is
// upnLetters[sum mod 23], where sum weights characters 2..13 by 2..13 and a
// letter counts as its index in upnLetters (the alphabet without I, O and S).
// Lower case is accepted and canonicalised to upper case.
type UPN struct{}

const upnLetters = "ABCDEFGHJKLMNPQRTUVWXYZ"

// Name implements [Scheme].
func (UPN) Name() string { return "upn" }

// System implements [Scheme].
func (UPN) System() string { return SystemUPN }

// Validate implements [Scheme].
func (s UPN) Validate(input string) Result {
	var o Outcome // a concrete call keeps o on the stack
	s.Check(input, &o)
	return result(s, input, &o)
}

// upnLengthReasons[n] is the reason for n characters; precomputed.
var upnLengthReasons = func() (t [MaxInputLen + 1]string) {
	for n := range t {
		t[n] = "13 characters expected, got " + strconv.Itoa(n)
	}
	return t
}()

// Check implements [Scheme].
func (s UPN) Check(input string, o *Outcome) {
	if len(input) > MaxInputLen {
		o.fail(UPNLength, "input is longer than 64 bytes")
		return
	}
	var c [13]byte
	n := 0
	for i := 0; i < len(input); {
		r, size := utf8.DecodeRuneInString(input[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			o.fail(UPNInvalidChar, "input is not valid UTF-8")
			return
		case isSeparator(r):
			continue
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z':
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		case unicode.IsDigit(r):
			o.fail(UPNNonASCIIDigit, "digits must be ASCII 0-9, not digits of another script")
			return
		default:
			o.fail(UPNInvalidChar, "only letters, digits, spaces and hyphens are allowed")
			return
		}
		if n < len(c) {
			c[n] = byte(r)
		}
		n++
	}
	if n == 0 {
		o.fail(UPNEmpty, "no characters given")
		return
	}
	if n != 13 {
		o.fail(UPNLength, upnLengthReasons[min(n, MaxInputLen)])
		return
	}
	if upnIndex(c[0]) < 0 {
		o.fail(UPNInvalidChar, "the first character must be a check letter (A-Z without I, O, S)")
		return
	}
	for i := 1; i < 12; i++ {
		if c[i] < '0' || c[i] > '9' {
			o.fail(UPNInvalidChar, "characters 2 to 12 must be digits")
			return
		}
	}
	temporary := false
	if c[12] < '0' || c[12] > '9' {
		if upnIndex(c[12]) < 0 {
			o.fail(UPNInvalidChar, "the last character must be a digit or a letter other than I, O, S")
			return
		}
		temporary = true
	}
	want := UPNCheckLetterOf(c[1:])
	if c[0] != want {
		o.fail(UPNCheckLetter, "the check letter does not match: this is not a valid number; check it against the record")
		return
	}
	rng := "permanent"
	if temporary {
		rng = "temporary"
	}
	o.ok(c[:], c[:], rng)
}

// UPNCheckLetterOf computes the check letter of the twelve characters after it.
func UPNCheckLetterOf(rest []byte) byte {
	sum := 0
	for i, ch := range rest[:12] {
		v := int(ch - '0')
		if ch < '0' || ch > '9' {
			v = upnIndex(ch)
		}
		sum += v * (i + 2)
	}
	return upnLetters[sum%23]
}

func upnIndex(ch byte) int {
	for i := range len(upnLetters) {
		if upnLetters[i] == ch {
			return i
		}
	}
	return -1
}

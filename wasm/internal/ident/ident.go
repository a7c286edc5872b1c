package ident

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxInputLen bounds the length in bytes of one input. Longer inputs are
// refused with the scheme's length code before any other work.
const MaxInputLen = 64

// Result is the outcome of validating one input under one scheme.
type Result struct {
	Input      string // the input exactly as given
	Valid      bool
	Scheme     string // short scheme name: "nhs", "chi", "hc", "upn", "uln"
	System     string // FHIR identifier system URI of the scheme
	Normalized string // canonical form (valid only): digits, or upper-case UPN
	Formatted  string // display form (valid only), e.g. "999 000 0018"
	Code       Code   // stable machine-readable reason (invalid only)
	Reason     string // human sentence (invalid only); never contains the input
	Range      string // advisory issuing range (valid only), e.g. "test"
}

// Code is a stable, machine-readable reason a number was refused. Codes are
// "<scheme>.<reason>"; the set is part of the module's ABI and never changes
// meaning once published.
type Code string

// Reason codes. The same suffixes are used by every scheme that can produce
// them (e.g. "chi.length").
const (
	NHSEmpty                Code = "nhs.empty"
	NHSInvalidChar          Code = "nhs.invalid_character"
	NHSNonASCIIDigit        Code = "nhs.non_ascii_digit"
	NHSLength               Code = "nhs.length"
	NHSNoCheckDigit         Code = "nhs.no_check_digit"
	NHSCheckDigit           Code = "nhs.check_digit"
	NHSPlaceholder          Code = "nhs.placeholder"
	CHIEmpty                Code = "chi.empty"
	CHIInvalidChar          Code = "chi.invalid_character"
	CHINonASCIIDigit        Code = "chi.non_ascii_digit"
	CHILength               Code = "chi.length"
	CHIDate                 Code = "chi.date"
	CHICheckDigit           Code = "chi.check_digit"
	CHIPlaceholder          Code = "chi.placeholder"
	HCEmpty                 Code = "hc.empty"
	HCInvalidChar           Code = "hc.invalid_character"
	HCNonASCIIDigit         Code = "hc.non_ascii_digit"
	HCLength                Code = "hc.length"
	HCNoCheckDigit          Code = "hc.no_check_digit"
	HCCheckDigit            Code = "hc.check_digit"
	HCPlaceholder           Code = "hc.placeholder"
	HCRange                 Code = "hc.range"
	UPNEmpty                Code = "upn.empty"
	UPNInvalidChar          Code = "upn.invalid_character"
	UPNNonASCIIDigit        Code = "upn.non_ascii_digit"
	UPNLength               Code = "upn.length"
	UPNCheckLetter          Code = "upn.check_letter"
	ULNEmpty                Code = "uln.empty"
	ULNInvalidChar          Code = "uln.invalid_character"
	ULNNonASCIIDigit        Code = "uln.non_ascii_digit"
	ULNLength               Code = "uln.length"
	ULNLeadingZero          Code = "uln.leading_zero"
	ULNNoCheckDigit         Code = "uln.no_check_digit"
	ULNCheckDigit           Code = "uln.check_digit"
	ULNPlaceholder          Code = "uln.placeholder"
	codeSuffixEmpty              = "empty"
	codeSuffixInvalidChar        = "invalid_character"
	codeSuffixNonASCIIDigit      = "non_ascii_digit"
	codeSuffixLength             = "length"
)

// AllCodes lists every code any scheme can return, for documentation and
// exhaustiveness tests.
var AllCodes = []Code{
	NHSEmpty, NHSInvalidChar, NHSNonASCIIDigit, NHSLength, NHSNoCheckDigit, NHSCheckDigit, NHSPlaceholder,
	CHIEmpty, CHIInvalidChar, CHINonASCIIDigit, CHILength, CHIDate, CHICheckDigit, CHIPlaceholder,
	HCEmpty, HCInvalidChar, HCNonASCIIDigit, HCLength, HCNoCheckDigit, HCCheckDigit, HCPlaceholder, HCRange,
	UPNEmpty, UPNInvalidChar, UPNNonASCIIDigit, UPNLength, UPNCheckLetter,
	ULNEmpty, ULNInvalidChar, ULNNonASCIIDigit, ULNLength, ULNLeadingZero, ULNNoCheckDigit, ULNCheckDigit, ULNPlaceholder,
}

// Scheme is one identifier scheme. Implementations are stateless values.
type Scheme interface {
	// Name is the short name used on the command line and in the ABI.
	Name() string
	// System is the FHIR identifier system URI; it prefixes token inputs.
	System() string
	// Validate checks one input. It never panics, whatever the input.
	Validate(input string) Result
	// Check is Validate without allocation: it fills o, which holds the
	// canonical and display forms in fixed arrays. The module uses it.
	Check(input string, o *Outcome)
}

// Outcome is the allocation-free form of a [Result], without the input and
// scheme fields.
type Outcome struct {
	Valid      bool
	Code       Code
	Reason     string
	Range      string
	norm, disp [16]byte
	nlen, dlen uint8
}

// Normalized returns the canonical form (valid only). It aliases o.
func (o *Outcome) Normalized() []byte { return o.norm[:o.nlen] }

// Formatted returns the display form (valid only). It aliases o.
func (o *Outcome) Formatted() []byte { return o.disp[:o.dlen] }

func (o *Outcome) fail(code Code, reason string) {
	*o = Outcome{Code: code, Reason: reason}
}

func (o *Outcome) ok(norm []byte, disp []byte, rng string) {
	*o = Outcome{Valid: true, Range: rng}
	o.nlen = uint8(copy(o.norm[:], norm))
	o.dlen = uint8(copy(o.disp[:], disp))
}

// result converts an Outcome into a Result.
func result(s Scheme, input string, o *Outcome) Result {
	r := Result{Input: input, Valid: o.Valid, Scheme: s.Name(), System: s.System(), Code: o.Code, Reason: o.Reason, Range: o.Range}
	if o.Valid {
		both := string(o.norm[:o.nlen]) + string(o.disp[:o.dlen])
		r.Normalized, r.Formatted = both[:o.nlen], both[o.nlen:]
	}
	return r
}

// FHIR identifier system URIs. The NHS number's is NHS England's; CHI uses
// the OID that HL7 UK publishes for it; H&C uses the URI in use by UK FHIR
// implementations; the education numbers have no published FHIR system yet,
// so Signpost assigns its own (documented in docs/RATIONALE.md).
const (
	SystemNHS = "https://fhir.nhs.uk/Id/nhs-number"
	SystemCHI = "urn:oid:2.16.840.1.113883.2.1.3.2.4.16.53"
	SystemHC  = "https://fhir.nhs.uk/Id/hsc-number"
	SystemUPN = "https://signpost-federation.github.io/Id/dfe-upn"
	SystemULN = "https://signpost-federation.github.io/Id/dfe-uln"
)

var schemes = []Scheme{NHS{}, CHI{}, HC{}, UPN{}, ULN{}}

// Schemes returns every scheme, NHS number first.
func Schemes() []Scheme { return append([]Scheme(nil), schemes...) }

// Lookup returns the scheme with the given short name.
func Lookup(name string) (Scheme, bool) {
	for _, s := range schemes {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// TokenInput is the byte string a token is computed over: the scheme's FHIR
// system URI, "|", and the canonical form. Callers must pass a Normalized
// value from a valid Result.
func TokenInput(s Scheme, normalized string) []byte {
	b := make([]byte, 0, len(s.System())+1+len(normalized))
	b = append(b, s.System()...)
	b = append(b, '|')
	return append(b, normalized...)
}

// isSeparator reports whether r is presentation that the parsers skip.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '\t', '-', '\u00a0', '\u2009', '\u202f', // spaces, no-break spaces
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212': // hyphens, dashes, minus
		return true
	}
	return false
}

// collectDigits extracts the ASCII digits of input into buf, skipping
// separators. It returns the digits and, on failure, the code suffix and a
// reason. buf must have room for max digits; more digits are counted but not
// stored.
func collectDigits(input string, buf []byte) (n int, suffix, reason string) {
	if len(input) > MaxInputLen {
		return 0, codeSuffixLength, "input is longer than 64 bytes"
	}
	for i := 0; i < len(input); {
		c := input[i]
		if c >= '0' && c <= '9' {
			if n < len(buf) {
				buf[n] = c
			}
			n++
			i++
			continue
		}
		if c < utf8.RuneSelf {
			if c == ' ' || c == '\t' || c == '-' {
				i++
				continue
			}
			return n, codeSuffixInvalidChar, "only digits, spaces and hyphens are allowed"
		}
		r, size := utf8.DecodeRuneInString(input[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			return n, codeSuffixInvalidChar, "input is not valid UTF-8"
		case isSeparator(r):
		case unicode.IsDigit(r):
			return n, codeSuffixNonASCIIDigit, "digits must be ASCII 0-9, not digits of another script"
		default:
			return n, codeSuffixInvalidChar, "only digits, spaces and hyphens are allowed"
		}
	}
	if n == 0 {
		return 0, codeSuffixEmpty, "no digits given"
	}
	return n, "", ""
}

// lengthReasons[n] is the reason for n digits where 10 are expected;
// precomputed so that refusing a number does not allocate.
var lengthReasons = func() (t [MaxInputLen + 1]string) {
	for n := range t {
		t[n] = "10 digits expected, got " + strconv.Itoa(n)
		if n == 9 {
			t[n] += " (a leading zero may have been lost)"
		}
	}
	return t
}()

// lengthReason is the reason for a wrong number of digits.
func lengthReason(got int) string {
	if got >= 0 && got < len(lengthReasons) {
		return lengthReasons[got]
	}
	return "10 digits expected, got " + strconv.Itoa(got)
}

// mod11Check returns the Modulus 11 check digit for the first nine digits of
// d (weights 10..2; 11 becomes 0), or 10 when no valid check digit exists.
func mod11Check(d []byte) int {
	c := 11 - weightedSum(d)%11
	if c == 11 {
		return 0
	}
	return c
}

// weightedSum is the sum of the first nine digits of d with weights 10..2:
// the base of the Modulus 11 (NHS, H&C, ULN) and Modulus 10 (CHI) checks.
func weightedSum(d []byte) int {
	sum := 0
	for i := range 9 {
		sum += int(d[i]-'0') * (10 - i)
	}
	return sum
}

// allSame reports whether every byte of d equals the first.
func allSame(d []byte) bool {
	for _, c := range d[1:] {
		if c != d[0] {
			return false
		}
	}
	return true
}

// format334 renders ten digits as "ddd ddd dddd" into b.
func format334(b *[12]byte, d []byte) []byte {
	copy(b[0:3], d[0:3])
	b[3] = ' '
	copy(b[4:7], d[3:6])
	b[7] = ' '
	copy(b[8:12], d[6:10])
	return b[:]
}

// schemeCodes are a digit scheme's codes, built once so that refusing a
// number does not allocate.
type schemeCodes struct {
	empty, invalidChar, nonASCIIDigit, length, placeholder, noCheckDigit, checkDigit Code
}

func newSchemeCodes(name string) *schemeCodes {
	c := func(suffix string) Code { return Code(name + "." + suffix) }
	return &schemeCodes{c("empty"), c("invalid_character"), c("non_ascii_digit"), c("length"), c("placeholder"), c("no_check_digit"), c("check_digit")}
}

var (
	nhsCodes = newSchemeCodes("nhs")
	chiCodes = newSchemeCodes("chi")
	hcCodes  = newSchemeCodes("hc")
	ulnCodes = newSchemeCodes("uln")
	upnCodes = newSchemeCodes("upn")
)

func codesOf(s Scheme) *schemeCodes {
	switch s.(type) {
	case CHI:
		return chiCodes
	case HC:
		return hcCodes
	case ULN:
		return ulnCodes
	case UPN:
		return upnCodes
	}
	return nhsCodes
}

// bySuffix maps collectDigits' suffixes to codes.
func (c *schemeCodes) bySuffix(suffix string) Code {
	switch suffix {
	case codeSuffixEmpty:
		return c.empty
	case codeSuffixInvalidChar:
		return c.invalidChar
	case codeSuffixNonASCIIDigit:
		return c.nonASCIIDigit
	}
	return c.length
}

const placeholderReason = "a number with all digits the same is a placeholder, not a person's number"

// checkDigitReason is the reason for a wrong check digit. It never names
// the digit that would make the number valid, nor the one typed: a
// mistyped number "corrected" by changing its last digit is a valid number
// of a different person, so the only safe advice is to check the number
// against its source.
const checkDigitReason = "the check digit does not match: this is not a valid number; check it against the record"

const noCheckDigitReason = "no valid number starts with these digits; check it against the record"

package ident

// NHS is the NHS number of England, Wales and the Isle of Man, the consistent
// identifier across health and care: ten digits, the tenth a Modulus 11
// check on the first nine (weights 10..2, 11 means 0, 10 means no valid
// number has these nine digits). Numbers whose digits are all the same
// (0000000000, 1111111111, …) pass the checksum but are placeholders and are
// refused by policy. The issuing range is reported, never enforced.
type NHS struct{}

// Name implements [Scheme].
func (NHS) Name() string { return "nhs" }

// System implements [Scheme].
func (NHS) System() string { return SystemNHS }

// Validate implements [Scheme].
func (s NHS) Validate(input string) Result {
	var o Outcome // a concrete call keeps o on the stack
	s.Check(input, &o)
	return result(s, input, &o)
}

// Check implements [Scheme].
func (s NHS) Check(input string, o *Outcome) {
	var d [10]byte
	if tenDigitMod11(s, input, &d, o) {
		o.Range = NHSRange(d[:])
	}
}

// tenDigits is the shared start of the ten-digit schemes (NHS, CHI, H&C,
// ULN): it collects exactly ten ASCII digits into d and refuses
// placeholders, failing o with s's codes and returning false otherwise.
func tenDigits(s Scheme, input string, d *[10]byte, o *Outcome) bool {
	codes := codesOf(s)
	n, suffix, reason := collectDigits(input, d[:])
	if suffix != "" {
		o.fail(codes.bySuffix(suffix), reason)
		return false
	}
	if n != 10 {
		o.fail(codes.length, lengthReason(n))
		return false
	}
	if allSame(d[:]) {
		o.fail(codes.placeholder, placeholderReason)
		return false
	}
	return true
}

// tenDigitMod11 is the shared core of the NHS and H&C schemes: ten ASCII
// digits, Modulus 11, placeholders refused.
func tenDigitMod11(s Scheme, input string, d *[10]byte, o *Outcome) bool {
	if !tenDigits(s, input, d, o) {
		return false
	}
	codes := codesOf(s)
	c := mod11Check(d[:])
	if c == 10 {
		o.fail(codes.noCheckDigit, noCheckDigitReason)
		return false
	}
	if int(d[9]-'0') != c {
		o.fail(codes.checkDigit, checkDigitReason)
		return false
	}
	var f [12]byte
	o.ok(d[:], format334(&f, d[:]), "")
	return true
}

// NHS number ranges (advisory).
const (
	RangeEnglandWales = "england-wales-iom"
	RangeScotland     = "scotland-chi"
	RangeNI           = "northern-ireland-hc"
	RangeTest         = "test"
	RangeUnallocated  = "unallocated"
)

// NHSRange names the issuing range of ten digits: 010–311 Scotland (CHI),
// 320–399 Northern Ireland (H&C), 400–499 and 600–799 England, Wales and the
// Isle of Man, 999 the test range, anything else unallocated. Advisory only.
func NHSRange(d []byte) string {
	p := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	switch {
	case p == 999:
		return RangeTest
	case p >= 10 && p <= 311:
		return RangeScotland
	case p >= 320 && p <= 399:
		return RangeNI
	case p >= 400 && p <= 499, p >= 600 && p <= 799:
		return RangeEnglandWales
	}
	return RangeUnallocated
}

// Mod11CheckDigit returns the check digit for nine ASCII digits, or 10 if none
// exists. Used by generators of synthetic numbers.
func Mod11CheckDigit(nine []byte) int { return mod11Check(nine) }

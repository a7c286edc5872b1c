package ident

// HC is Northern Ireland's Health and Care number: ten digits with the NHS
// number's Modulus 11 check, issued from the range 320 000 0000 – 399 999 9999.
// Unlike the NHS number, the range is part of the definition: a checksum-valid
// number outside it is not an H&C number.
type HC struct{}

// Name implements [Scheme].
func (HC) Name() string { return "hc" }

// System implements [Scheme].
func (HC) System() string { return SystemHC }

// Validate implements [Scheme].
func (s HC) Validate(input string) Result {
	var o Outcome // a concrete call keeps o on the stack
	s.Check(input, &o)
	return result(s, input, &o)
}

// Check implements [Scheme].
func (s HC) Check(input string, o *Outcome) {
	var d [10]byte
	if !tenDigitMod11(s, input, &d, o) {
		return
	}
	if NHSRange(d[:]) != RangeNI {
		o.fail(HCRange, "an H&C number lies between 320 000 0000 and 399 999 9999")
		return
	}
	o.Range = RangeNI
}

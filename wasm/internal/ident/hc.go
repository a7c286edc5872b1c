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
	var d [10]byte
	r, ok := tenDigitMod11(s, input, &d)
	if !ok {
		return r
	}
	if NHSRange(d[:]) != RangeNI {
		return invalid(s, input, HCRange, "an H&C number lies between 320 000 0000 and 399 999 9999")
	}
	r.Range = RangeNI
	return r
}

package ident

// ULN is the Unique Learner Number of the Learning Records Service: ten
// digits, the first not zero, the tenth a check: with weights 10..2 on the
// first nine, check = 10 − (sum mod 11); a remainder of 0 would need check
// digit 10, so no valid ULN has those nine digits.
type ULN struct{}

// Name implements [Scheme].
func (ULN) Name() string { return "uln" }

// System implements [Scheme].
func (ULN) System() string { return SystemULN }

// Validate implements [Scheme].
func (s ULN) Validate(input string) Result {
	var o Outcome // a concrete call keeps o on the stack
	s.Check(input, &o)
	return result(s, input, &o)
}

// Check implements [Scheme].
func (s ULN) Check(input string, o *Outcome) {
	var d [10]byte
	if !tenDigits(s, input, &d, o) {
		return
	}
	if d[0] == '0' {
		o.fail(ULNLeadingZero, "a ULN does not begin with 0")
		return
	}
	rem := weightedSum(d[:]) % 11
	if rem == 0 {
		o.fail(ULNNoCheckDigit, noCheckDigitReason)
		return
	}
	c := 10 - rem
	if int(d[9]-'0') != c {
		o.fail(ULNCheckDigit, checkDigitReason)
		return
	}
	o.ok(d[:], d[:], "")
}

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
	var d [10]byte
	n, suffix, reason := collectDigits(input, d[:])
	if suffix != "" {
		return invalid(s, input, suffixCode(s, suffix), reason)
	}
	if n != 10 {
		return invalid(s, input, ULNLength, lengthReason(10, n))
	}
	if allSame(d[:]) {
		return invalid(s, input, ULNPlaceholder, "a number with all digits the same is a placeholder, not a person's number")
	}
	if d[0] == '0' {
		return invalid(s, input, ULNLeadingZero, "a ULN does not begin with 0")
	}
	sum := 0
	for i := range 9 {
		sum += int(d[i]-'0') * (10 - i)
	}
	rem := sum % 11
	if rem == 0 {
		return invalid(s, input, ULNNoCheckDigit, noCheckDigitReason)
	}
	c := 10 - rem
	if int(d[9]-'0') != c {
		return invalid(s, input, ULNCheckDigit, checkDigitReason(c, d[9]))
	}
	return Result{
		Input: input, Valid: true, Scheme: s.Name(), System: s.System(),
		Normalized: string(d[:]), Formatted: string(d[:]),
	}
}

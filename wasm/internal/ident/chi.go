package ident

// CHI is Scotland's Community Health Index number: ten digits, the first six
// a real date of birth DDMMYY (any century, so 29 February is accepted when
// the two-digit year can be a leap year), digits 7–8 a serial, digit 9 odd
// for males and even for females, digit 10 a check. Numbers issued before
// November 2025 carry the NHS number's Modulus 11 check; once a date's
// Modulus 11 numbers are exhausted NSS issues numbers with a Modulus 10
// check, so either is accepted. The Modulus 10 check uses the same weights
// (10..2) with check = (10 − sum mod 10) mod 10; see docs/RATIONALE.md for
// the status of that definition.
type CHI struct{}

// Name implements [Scheme].
func (CHI) Name() string { return "chi" }

// System implements [Scheme].
func (CHI) System() string { return SystemCHI }

// Validate implements [Scheme].
func (s CHI) Validate(input string) Result {
	var o Outcome // a concrete call keeps o on the stack
	s.Check(input, &o)
	return result(s, input, &o)
}

// Check implements [Scheme].
func (s CHI) Check(input string, o *Outcome) {
	var d [10]byte
	if !tenDigits(s, input, &d, o) {
		return
	}
	if !chiDate(d[:6]) {
		o.fail(CHIDate, "the first six digits must be a real date DDMMYY")
		return
	}
	got := int(d[9] - '0')
	m11 := mod11Check(d[:])
	m10 := CHIMod10Check(d[:])
	if got != m11 && got != m10 {
		o.fail(CHICheckDigit, checkDigitReason)
		return
	}
	rng := "scotland"
	if got != m11 {
		rng = "scotland-mod10"
	}
	var f [12]byte
	o.ok(d[:], format334(&f, d[:]), rng)
}

// CHIMod10Check is the CHI Modulus 10 check digit of the first nine digits.
func CHIMod10Check(d []byte) int {
	return (10 - weightedSum(d)%10) % 10
}

// chiDate reports whether six digits are a real date DDMMYY in some century.
func chiDate(d []byte) bool {
	day := int(d[0]-'0')*10 + int(d[1]-'0')
	month := int(d[2]-'0')*10 + int(d[3]-'0')
	year := int(d[4]-'0')*10 + int(d[5]-'0')
	if day < 1 || month < 1 || month > 12 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month]
	if month == 2 && year%4 == 0 { // 2000 was a leap year, so YY=00 can be
		days = 29
	}
	return day <= days
}

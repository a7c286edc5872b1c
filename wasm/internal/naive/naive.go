// Package naive holds deliberately naive reference implementations and input
// generators that tests on both sides of the wasm boundary compare the real
// validator against. It is test support: production code must not import it.
package naive

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
)

// NHS is a deliberately naive reading of the Modulus 11 definition in
// docs/DESIGN.md, written independently of the validator: it returns the code
// the validator must return ("" for valid).
func NHS(s string) string {
	digits := ""
	for _, r := range s {
		if r == ' ' || r == '-' {
			continue
		}
		if r >= '0' && r <= '9' {
			digits += string(r)
			continue
		}
		if unicode.IsDigit(r) {
			return "nhs.non_ascii_digit"
		}
		return "nhs.invalid_character"
	}
	if len(digits) == 0 {
		return "nhs.empty"
	}
	if len(digits) != 10 {
		return "nhs.length"
	}
	if strings.Count(digits, digits[:1]) == 10 {
		return "nhs.placeholder"
	}
	total := 0
	for i := 0; i < 9; i++ {
		d, _ := strconv.Atoi(digits[i : i+1])
		total += d * (10 - i)
	}
	check := 11 - total%11
	if check == 11 {
		check = 0
	}
	if check == 10 {
		return "nhs.no_check_digit"
	}
	last, _ := strconv.Atoi(digits[9:])
	if last != check {
		return "nhs.check_digit"
	}
	return ""
}

// RandomInput returns a random 10-character input: mostly ASCII digits, with
// occasional separators, letters and non-ASCII digits so that every branch
// of the reference is exercised.
func RandomInput(rng *rand.Rand, buf []rune) string {
	for i := range buf {
		switch x := rng.IntN(100); {
		case x < 94:
			buf[i] = rune('0' + rng.IntN(10))
		case x < 96:
			buf[i] = ' '
		case x < 97:
			buf[i] = '-'
		case x < 98:
			buf[i] = 'x'
		case x < 99:
			buf[i] = '٣'
		default:
			buf[i] = '7'
		}
	}
	if rng.IntN(50) == 0 { // a placeholder now and then
		for i := range buf {
			buf[i] = buf[0]
		}
	}
	return string(buf)
}

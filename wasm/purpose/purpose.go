// Package purpose owns the one rule for purpose names: the names that bind a
// token to what it may be used for ("safeguarding", "direct-care"). A purpose
// is part of the POPRF public info of every token (wasm/internal/token), is
// asserted by the federation authority in each node's descriptor
// (federation) and is configured on every node (node). All of them call
// [Validate], so a name is either accepted everywhere or refused everywhere:
// there is no name that can be enrolled and configured but never tokenised.
//
// The rule: one or more words of lowercase ASCII letters (a-z) joined by
// single hyphens, at most [MaxLen] bytes. No digits, no upper case, no
// leading, trailing or doubled hyphen. The length is the federation
// descriptor's, whose purposes must fit, with everything else, in
// memberlist's 512-byte node metadata.
//
// The package uses only the standard library's errors so that it compiles
// into the WebAssembly guest as well as natively.
package purpose

import "errors"

// MaxLen is the longest purpose name, in bytes.
const MaxLen = 40

// ErrInvalid is returned, unwrapped, by [Validate] for every name that breaks
// the rule. Callers that add context wrap it.
var ErrInvalid = errors.New("purpose: name must be lowercase ASCII words (a-z) joined by single hyphens, 1-40 bytes")

// Validate returns nil if name is a valid purpose name and [ErrInvalid]
// otherwise.
func Validate(name string) error {
	if len(name) == 0 || len(name) > MaxLen || name[0] == '-' || name[len(name)-1] == '-' {
		return ErrInvalid
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z':
		case c == '-' && name[i-1] != '-': // i > 0: name[0] is not '-'
		default:
			return ErrInvalid
		}
	}
	return nil
}

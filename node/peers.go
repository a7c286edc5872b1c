package node

import (
	"errors"
	"fmt"
)

// peerError is a peer's JSON error answer.
type peerError struct {
	Status        int
	Code, Message string
}

func (e *peerError) Error() string { return fmt.Sprintf("peer answered %d %s", e.Status, e.Code) }

// asPeerError maps a peer's 4xx answer back to the same API error (the
// issuer refusing a purpose is the caller's problem, not an outage).
func asPeerError(err error) (*apiError, bool) {
	var pe *peerError
	if errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && pe.Code != "" {
		return errorf(pe.Status, pe.Code, "the issuer refused: %s", pe.Message), true
	}
	return nil, false
}

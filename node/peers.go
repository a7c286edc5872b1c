package node

import (
	"errors"
)

// asPeerError maps a peer's 4xx answer back to the same API error (the
// issuer refusing a purpose is the caller's problem, not an outage).
func asPeerError(err error) (*apiError, bool) {
	var pe *PeerError
	if errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && pe.Code != "" {
		return errorf(pe.Status, pe.Code, "the issuer refused: %s", pe.Message), true
	}
	return nil, false
}

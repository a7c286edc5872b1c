package node

import (
	"errors"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// asPeerError maps a peer's 4xx answer back to the same API error (the
// issuer refusing a purpose is the caller's problem, not an outage).
func asPeerError(err error) (*apiError, bool) {
	var pe *PeerError
	if errors.As(err, &pe) && pe.Status >= 400 && pe.Status < 500 && knownCode(pe.Code) {
		return errorf(pe.Status, httpx.Code(pe.Code), "the issuer refused: %s", pe.Message), true
	}
	return nil, false
}

// knownCode reports whether a peer's error code is one this node could send
// itself (httpx.Codes): only those are passed on to the caller.
func knownCode(s string) bool {
	_, ok := httpx.Known(s)
	return ok
}

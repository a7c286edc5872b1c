package locator

import "errors"

// Sentinel errors. Every rejection has a Reason, and Reason.Err returns its
// sentinel; callers branch with errors.Is.
var (
	ErrBadSignature     = errors.New("locator: bad entry signature")
	ErrExpired          = errors.New("locator: entry expired")
	ErrRetentionTooLong = errors.New("locator: expiry beyond maximum retention")
	ErrTooLarge         = errors.New("locator: entry too large")
	ErrTruncated        = errors.New("locator: entry truncated")
	ErrMalformed        = errors.New("locator: entry malformed")
	ErrStale            = errors.New("locator: stale version")
	ErrSealBroken       = errors.New("locator: sealed part does not open")
	ErrHolderSignature  = errors.New("locator: holder signature does not verify")
	ErrUnknownHolder    = errors.New("locator: holder node unknown")
	ErrClosed           = errors.New("locator: store closed")
)

// Reason says why a write or an opened entry was rejected.
type Reason uint8

// Rejection reasons. ReasonNone marks an accepted or duplicate write.
const (
	ReasonNone Reason = iota
	ReasonBadSignature
	ReasonExpired
	ReasonRetentionTooLong
	ReasonTooLarge
	ReasonTruncated
	ReasonMalformed
	ReasonStale
	ReasonSealBroken
	ReasonHolderSignature
	ReasonUnknownHolder
	// NumReasons is the number of reasons, for arrays indexed by Reason.
	NumReasons
)

var reasonInfo = [NumReasons]struct {
	name string
	err  error
}{
	ReasonNone:             {"none", nil},
	ReasonBadSignature:     {"bad_signature", ErrBadSignature},
	ReasonExpired:          {"expired", ErrExpired},
	ReasonRetentionTooLong: {"retention_too_long", ErrRetentionTooLong},
	ReasonTooLarge:         {"too_large", ErrTooLarge},
	ReasonTruncated:        {"truncated", ErrTruncated},
	ReasonMalformed:        {"malformed", ErrMalformed},
	ReasonStale:            {"stale", ErrStale},
	ReasonSealBroken:       {"seal_broken", ErrSealBroken},
	ReasonHolderSignature:  {"holder_signature", ErrHolderSignature},
	ReasonUnknownHolder:    {"unknown_holder", ErrUnknownHolder},
}

// String returns a stable snake_case name, for metrics.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonInfo[r].name
	}
	return "unknown"
}

// Err returns the sentinel error of r (nil for ReasonNone).
func (r Reason) Err() error {
	if r < NumReasons {
		return reasonInfo[r].err
	}
	return nil
}

// ReasonOf returns the Reason whose sentinel err wraps, or ReasonMalformed
// when err is non-nil and wraps none of them, or ReasonNone for nil.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonNone
	}
	for r := ReasonBadSignature; r < NumReasons; r++ {
		if errors.Is(err, reasonInfo[r].err) {
			return r
		}
	}
	return ReasonMalformed
}

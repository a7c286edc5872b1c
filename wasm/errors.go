package wasm

import (
	"errors"
	"fmt"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/ident"
	"github.com/signpost-federation/signpost/wasm/purpose"
)

// Errors callers branch on. None of them, nor anything wrapping them, carries
// an identifier, token, blind or key.
var (
	ErrInvalidPurpose = fmt.Errorf("wasm: %w", purpose.ErrInvalid)
	ErrInvalidEpoch   = errors.New("wasm: invalid epoch")
	ErrUnknownScheme  = errors.New("wasm: unknown identifier scheme")
	ErrBatchSize      = errors.New("wasm: batch must hold between 1 and 4096 items")
	ErrMismatch       = errors.New("wasm: evaluator returned a different number of elements")
	ErrEncoding       = errors.New("wasm: malformed scalar, element or proof")
	ErrProofInvalid   = errors.New("wasm: evaluation proof does not verify")
	ErrPublicKey      = errors.New("wasm: invalid issuer public key")
	ErrIssuerKey      = errors.New("wasm: invalid issuer private key")
	ErrInvalidNumber  = errors.New("wasm: identifier is not valid")
	ErrInputTooLarge  = errors.New("wasm: input too large")
	ErrClosed         = errors.New("wasm: runtime closed")
	ErrABI            = errors.New("wasm: module call failed")
	// ErrKeySet reports a threshold key set that is not usable: t outside
	// 1..n, a repeated or zero index, a malformed key, shares that do not
	// lie on one polynomial with the group key, a bad node id.
	ErrKeySet = errors.New("wasm: invalid key set")
	// ErrTooFewPartials reports fewer than t partial evaluations whose
	// proofs verify; the message says how many verified of how many were
	// needed.
	ErrTooFewPartials = errors.New("wasm: too few valid partial evaluations")
	// ErrPartialIndex reports a partial evaluation whose issuer index is
	// not in the key set.
	ErrPartialIndex = errors.New("wasm: partial evaluation from an issuer outside the key set")
)

// mapErr turns package token's sentinels into this package's, through the
// status that reports them from the module, so that the native issuer and
// the module give the same error for the same fault.
func mapErr(err error) error {
	if base, ok := statusErrors[abi.StatusOf(err)]; ok {
		return base
	}
	return err
}

// Reason codes returned in [Result].Code. They are stable: a code never
// changes meaning once published. See ident for the rules behind them.
const (
	CodeNHSEmpty         = string(ident.NHSEmpty)
	CodeNHSInvalidChar   = string(ident.NHSInvalidChar)
	CodeNHSNonASCIIDigit = string(ident.NHSNonASCIIDigit)
	CodeNHSLength        = string(ident.NHSLength)
	CodeNHSNoCheckDigit  = string(ident.NHSNoCheckDigit)
	CodeNHSCheckDigit    = string(ident.NHSCheckDigit)
	CodeNHSPlaceholder   = string(ident.NHSPlaceholder)
	CodeCHILength        = string(ident.CHILength)
	CodeCHIDate          = string(ident.CHIDate)
	CodeCHICheckDigit    = string(ident.CHICheckDigit)
	CodeHCRange          = string(ident.HCRange)
	CodeUPNCheckLetter   = string(ident.UPNCheckLetter)
	CodeULNCheckDigit    = string(ident.ULNCheckDigit)
)

// Codes lists every reason code any scheme can return.
func Codes() []string {
	out := make([]string, len(ident.AllCodes))
	for i, c := range ident.AllCodes {
		out[i] = string(c)
	}
	return out
}

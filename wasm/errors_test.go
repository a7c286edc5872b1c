package wasm

import (
	"errors"
	"fmt"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// TestTokenErrorsMapAlike checks that a token error means the same whether
// the native issuer returns it (mapErr) or the module reports it by status
// (statusError).
func TestTokenErrorsMapAlike(t *testing.T) {
	tests := []struct {
		tokenErr, want error
	}{
		{token.ErrInvalidPurpose, ErrInvalidPurpose},
		{token.ErrInvalidEpoch, ErrInvalidEpoch},
		{token.ErrBatchSize, ErrBatchSize},
		{token.ErrMismatch, ErrMismatch},
		{token.ErrEncoding, ErrEncoding},
		{token.ErrProofInvalid, ErrProofInvalid},
		{token.ErrPublicKey, ErrPublicKey},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("context: %w", tt.tokenErr)
		if got := mapErr(wrapped); got != tt.want {
			t.Errorf("mapErr(%v) = %v, want %v", tt.tokenErr, got, tt.want)
		}
		if got := statusError(abi.StatusOf(wrapped), "msg"); !errors.Is(got, tt.want) {
			t.Errorf("statusError(StatusOf(%v)) = %v, want %v", tt.tokenErr, got, tt.want)
		}
	}
	other := errors.New("something else")
	if got := mapErr(other); got != other {
		t.Errorf("mapErr changed an unrelated error: %v", got)
	}
	if got := statusError(abi.StatusOf(other), "msg"); !errors.Is(got, ErrABI) {
		t.Errorf("statusError of an internal failure = %v, want ErrABI", got)
	}
}

package stack

import (
	"errors"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/wasm/purpose"
)

// TestValidateConfig: the stack refuses, at config time, a purpose name
// the token code could never use, beside the core's own problems, all in
// one error; a valid config passes. (purpose_conformance_test.go checks the
// same names against every component.)
func TestValidateConfig(t *testing.T) {
	c := node.DefaultConfig()
	c.Purposes = []string{"Safe Guarding", "care2", "safeguarding"}
	c.ContactPolicy = "maybe"
	err := ValidateConfig(c)
	if !errors.Is(err, node.ErrConfig) || !errors.Is(err, purpose.ErrInvalid) {
		t.Fatalf("got %v, want ErrConfig and purpose.ErrInvalid", err)
	}
	for _, want := range []string{`purpose "Safe Guarding"`, `purpose "care2"`, "node_id is required", "contact_policy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if strings.Contains(err.Error(), `purpose "safeguarding"`) {
		t.Errorf("a valid purpose reported: %v", err)
	}
	c = node.DefaultConfig()
	c.NodeID, c.Category = "a", "gp"
	if err := ValidateConfig(c); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

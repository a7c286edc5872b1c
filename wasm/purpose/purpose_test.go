package purpose_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/signpost-federation/signpost/wasm/purpose"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"safeguarding", true},
		{"direct-care", true},
		{"a", true},
		{"a-b-c", true},
		{strings.Repeat("a", purpose.MaxLen), true},
		{strings.Repeat("a", purpose.MaxLen+1), false},
		{"", false},
		{"care2", false},
		{"2care", false},
		{"Safeguarding", false},
		{"direct--care", false},
		{"-care", false},
		{"care-", false},
		{"-", false},
		{"direct care", false},
		{"direct_care", false},
		{"dïrect", false},
		{"a|b", false},
		{"care\x00", false},
	}
	for _, tt := range tests {
		err := purpose.Validate(tt.name)
		if tt.ok && err != nil {
			t.Errorf("Validate(%q) = %v, want nil", tt.name, err)
		}
		if !tt.ok && err != purpose.ErrInvalid {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"safeguarding", "direct-care", "care2", "a--b", "-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The rule restated as words split on "-": every word non-empty
		// and of a-z only.
		want := len(s) > 0 && len(s) <= purpose.MaxLen
		for _, w := range strings.Split(s, "-") {
			want = want && w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") == ""
		}
		if err := purpose.Validate(s); (err == nil) != want || (err != nil && !errors.Is(err, purpose.ErrInvalid)) {
			t.Fatalf("Validate(%q) = %v, want valid=%v", s, err, want)
		}
	})
}

func ExampleValidate() {
	for _, p := range []string{"direct-care", "care2"} {
		fmt.Println(p, purpose.Validate(p) == nil)
	}
	// Output:
	// direct-care true
	// care2 false
}

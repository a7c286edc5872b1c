package node

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDefaultConfig(&b, "riverside-school"); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(&b)
	if err != nil {
		t.Fatalf("the written default does not parse: %v", err)
	}
	d := DefaultConfig()
	if c.NodeID != "riverside-school" || c.Listen != d.Listen || c.MaxBodyBytes != d.MaxBodyBytes || c.RetentionDefault != d.RetentionDefault ||
		strings.Join(c.Purposes, ",") != strings.Join(d.Purposes, ",") || c.ContactPolicy != "accept" || c.CredentialsFile != "node.pem" {
		t.Fatalf("round trip: %+v", c)
	}
	if _, err := c.WithDefaults(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown key", "node_idd = x\n", "line 1: node_idd: unknown key"},
		{"no equals", "node_id x\n", "line 1: expected key = value"},
		{"bad duration", "retention_default = soon\n", "line 1: retention_default: malformed value"},
		{"bad int", "\n\nmax_batch = many\n", "line 3: max_batch: malformed value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(strings.NewReader(tc.in))
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	c := DefaultConfig()
	c.ContactPolicy = "maybe"
	c.UserRate = -1 // a typo must not switch the limit off
	_, err := c.WithDefaults()
	for _, want := range []string{"node_id is required", "category is required", "contact_policy", "rate limits must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	c = DefaultConfig()
	c.NodeID, c.Category = "a", "gp"
	got, err := c.WithDefaults()
	if err != nil || got.Issuer != "a" || got.ShutdownTimeout != 10*time.Second {
		t.Fatalf("defaults: %v %+v", err, got)
	}
}

func FuzzParseConfig(f *testing.F) {
	var b bytes.Buffer
	WriteDefaultConfig(&b, "x")
	f.Add(b.String())
	f.Add("node_id = a\ncategory = gp\npurposes = a, b,,c\n")
	f.Add("=\n=\n#\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		c.WithDefaults() // must not panic
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add("localId,nhsNumber\nr1,9990000018\n")
	f.Add("r1,\"999 000 0018\",cin,2040-01-01\nr2,1\n\n")
	f.Add("\"unterminated\n")
	f.Add("a,b,c,d,e\n,\n")
	f.Fuzz(func(t *testing.T, s string) {
		last := 0
		ReadCSV(strings.NewReader(s), func(row CSVRow, bad *RowError) error {
			if bad == nil && row.Line < last {
				t.Fatalf("lines go backwards: %d after %d", row.Line, last)
			}
			if bad == nil {
				last = row.Line
			}
			return nil
		})
	})
}

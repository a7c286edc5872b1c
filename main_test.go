package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDoMain(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no args is a usage error", args: nil, wantCode: 2, wantErr: "Usage: signpost"},
		{name: "help goes to stdout", args: []string{"help"}, wantCode: 0, wantOut: "Usage: signpost"},
		{name: "help names the wasm cache", args: []string{"help"}, wantCode: 0, wantOut: "-wasm-cache DIR\nor $SIGNPOST_WASM_CACHE=DIR"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantErr: `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := doMain(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errb.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestCommandNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("command %q is listed twice", c.name)
		}
		seen[c.name] = true
		if c.summary == "" || c.run == nil {
			t.Errorf("command %q needs a summary and a run function", c.name)
		}
	}
}

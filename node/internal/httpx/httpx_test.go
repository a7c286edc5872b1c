package httpx

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, 403, CodeCSRFMissing, "this request needs the X-CSRF-Token header")
	if w.Code != 403 || w.Header().Get("Content-Type") != "application/json; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	var b ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error.Code != "csrf_missing" || b.Error.Message == "" {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
}

func TestDecodeJSON(t *testing.T) {
	type req struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name, ctype, body string
		wantStatus        int
		wantCode          Code
	}{
		{"ok", "application/json", `{"name":"a"}`, 0, ""},
		{"ok with charset", "application/json; charset=utf-8", `{"name":"a"}`, 0, ""},
		{"form", "application/x-www-form-urlencoded", `name=a`, 415, CodeUnsupportedType},
		{"no type", "", `{"name":"a"}`, 415, CodeUnsupportedType},
		{"unknown field", "application/json", `{"name":"a","x":1}`, 400, CodeBadRequest},
		{"trailing data", "application/json", `{"name":"a"} {}`, 400, CodeBadRequest},
		{"wrong type quotes no input", "application/json", `{"name":9990000018}`, 400, CodeBadRequest},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", 100) + `"}`, 413, CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			w := httptest.NewRecorder()
			var v req
			err := DecodeJSON(w, r, 64, &v)
			if tt.wantStatus == 0 {
				if err != nil || v.Name != "a" {
					t.Fatalf("err %v, v %+v", err, v)
				}
				return
			}
			if !errors.Is(err, ErrBadJSON) || w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), `"`+string(tt.wantCode)+`"`) {
				t.Fatalf("err %v, %d %s", err, w.Code, w.Body.String())
			}
			if strings.Contains(err.Error()+w.Body.String(), "999") {
				t.Fatal("the error quotes request input")
			}
		})
	}
}

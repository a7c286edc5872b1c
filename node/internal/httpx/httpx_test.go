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
		{"duplicate key", "application/json", `{"name":"b","name":"a"}`, 400, CodeBadRequest},
		{"duplicate key, other case", "application/json", `{"name":"b","NAME":"a"}`, 400, CodeBadRequest},
		{"duplicate key, escaped letter", "application/json", `{"name":"b","nam\u0065":"a"}`, 400, CodeBadRequest},
		{"duplicate key, escaped", "application/json", `{"n\u0061me":"b","name":"a"}`, 400, CodeBadRequest},
		{"not json", "application/json", `{"name":`, 400, CodeBadRequest},
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

// TestUnmarshalDuplicateKeys: a key named twice in any object, at any
// depth, is refused; the same key in sibling objects is not a duplicate.
func TestUnmarshalDuplicateKeys(t *testing.T) {
	for _, tt := range []struct {
		body string
		dup  bool
	}{
		{`{"a":1,"b":2}`, false},
		{`{"a":{"x":1},"b":{"x":1}}`, false},
		{`[{"x":1},{"x":2}]`, false},
		{`{"a":[{"x":1,"y":{"x":2}}]}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"a":{"x":1,"x":2}}`, true},
		{`{"a":[{"x":1},{"y":1,"y":2}]}`, true},
		{`{"a":[[{"k":1,"\u212a":2}]]}`, true}, // the Kelvin sign folds to k
		{`{"s":1,"\u017f":2}`, true},           // the long s folds to s
		{`{"a":{},"a":[]}`, true},
	} {
		var v any
		err := Unmarshal([]byte(tt.body), &v)
		var e *Error
		if tt.dup != (err != nil) || err != nil && (!errors.As(err, &e) || e.Status != 400 || e.Message != "the body names a key twice") {
			t.Errorf("%s: err %v, want duplicate %v", tt.body, err, tt.dup)
		}
	}
}

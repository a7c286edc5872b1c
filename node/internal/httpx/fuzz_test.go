package httpx

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeJSON: any body gets either a decoded value or exactly one error
// response with a stable code, never a panic, and the response never quotes
// the body.
func FuzzDecodeJSON(f *testing.F) {
	f.Add("application/json", `{"username":"alice","password":"correct horse battery"}`)
	f.Add("application/json", `{"username":9990000018}`)
	f.Add("application/json; charset=utf-8", `{} {}`)
	f.Add("text/plain", `{}`)
	f.Fuzz(func(t *testing.T, ctype, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		var v struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		err := DecodeJSON(w, r, 256, &v)
		if err == nil {
			if w.Body.Len() != 0 {
				t.Fatal("wrote a response on success")
			}
			return
		}
		if !errors.Is(err, ErrBadJSON) || w.Code < 400 || !strings.HasPrefix(w.Body.String(), `{"error":{"code":"`) {
			t.Fatalf("err %v, response %d %q", err, w.Code, w.Body.String())
		}
		if len(body) >= 12 && strings.Contains(w.Body.String()+err.Error(), body) {
			t.Fatal("the error quotes the body")
		}
	})
}

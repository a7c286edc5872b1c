package httpx

import (
	"encoding/json"
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
	f.Add("application/json", `{"username":"alice","username":"bob"}`)
	f.Add("application/json", `{"username":"alice","USERNAME":"bob"}`)
	f.Add("application/json", `{"username":"a\u202eb","password":"\u0000\ud800"}`)
	f.Add("application/json", `{"password":{"x":1,"x":2}}`)
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

// FuzzUnmarshalDuplicateKeys: a body that Unmarshal accepts is refused
// once a second "username" is put in front of its keys whenever it already
// names one (in any case), as encoding/json's last-wins map decoding tells.
func FuzzUnmarshalDuplicateKeys(f *testing.F) {
	f.Add(`{"username":"alice"}`)
	f.Add(`{"Username":"alice","password":"p"}`)
	f.Add(`{"password":"p"}`)
	f.Add(` {"USERNAME":"x"} `)
	f.Fuzz(func(t *testing.T, body string) {
		var v struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if Unmarshal([]byte(body), &v) != nil {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &m) != nil || m == nil {
			return
		}
		named := false
		for k := range m {
			named = named || strings.EqualFold(k, "username")
		}
		i := strings.IndexByte(body, '{')
		dup := body[:i+1] + `"username":"x",` + body[i+1:]
		if len(m) == 0 {
			dup = body[:i+1] + `"username":"x"` + body[i+1:]
		}
		err := Unmarshal([]byte(dup), &v)
		if named && err == nil {
			t.Fatalf("%q accepted with a duplicate username", dup)
		}
		if !named && err != nil {
			t.Fatalf("%q refused though it names username once: %v", dup, err)
		}
	})
}

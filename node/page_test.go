package node

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// TestAssetsCompressedAndCacheable: the page and the wasm module are served
// gzip-compressed when accepted, with a strong ETag answered by 304, the
// right content types, and no-cache only on the HTML.
func TestAssetsCompressedAndCacheable(t *testing.T) {
	fed := newFakeFed()
	wasmBody := strings.Repeat("\x00asm", 1000)
	n, err := New(func() Config {
		c := DefaultConfig()
		c.NodeID, c.Category, c.DataDir = "a", "gp", t.TempDir()
		return c
	}(), Options{Tokenizer: &fakeTokenizer{}, Index: fed.index("a", "A"), Auth: tokens,
		PageFS: fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>x</title>" + strings.Repeat(" ", 600))}},
		WasmFS: fstest.MapFS{"signpost.wasm": {Data: []byte(wasmBody)}, "signpost.js": {Data: []byte("export const x = 1;")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(t.Context())
	h := n.Handler()
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	res := get("/wasm/signpost.wasm", map[string]string{"Accept-Encoding": "gzip"})
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/wasm" || res.Header.Get("Content-Encoding") != "gzip" ||
		!strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("wasm: %d %v", res.StatusCode, res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != wasmBody {
		t.Fatal("gzip body differs")
	}
	etag := res.Header.Get("ETag")
	if res := get("/wasm/signpost.wasm", map[string]string{"If-None-Match": etag}); res.StatusCode != 304 {
		t.Fatalf("revalidation: %d", res.StatusCode)
	}
	if res := get("/wasm/signpost.js", nil); !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("js type %q", res.Header.Get("Content-Type"))
	}
	res = get("/", nil)
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("page: %d %v", res.StatusCode, res.Header)
	}
	if res := get("/nope.txt", nil); res.StatusCode != 404 {
		t.Fatalf("missing: %d", res.StatusCode)
	}
}

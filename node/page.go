package node

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// mountPage serves the practitioner page (Options.PageFS at /) and the wasm
// module and its loader (Options.WasmFS at /wasm/). Assets are served with a
// strong ETag, gzip when the client accepts it (compressed once, kept), and
// Cache-Control: the .wasm and loader are revalidated cheaply by ETag. It
// reports whether it mounted the page at /.
func (n *Node) mountPage(mux *http.ServeMux) bool {
	if n.opt.WasmFS != nil {
		mux.Handle("GET /wasm/", http.StripPrefix("/wasm/", newAssets(n.opt.WasmFS)))
	}
	if n.opt.PageFS != nil {
		mux.Handle("/", newAssets(n.opt.PageFS))
		return true
	}
	return false
}

type asset struct {
	raw, gz []byte
	etag    string
	ctype   string
}

type assets struct {
	fsys fs.FS
	mu   sync.Mutex
	c    map[string]*asset
}

func newAssets(fsys fs.FS) *assets { return &assets{fsys: fsys, c: make(map[string]*asset)} }

func (a *assets) load(name string) (*asset, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if as, ok := a.c[name]; ok {
		return as, nil
	}
	f, err := a.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return nil, fs.ErrNotExist
	}
	raw, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	as := &asset{raw: raw, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	as.ctype = mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".wasm":
		as.ctype = "application/wasm"
	case ".js", ".mjs":
		as.ctype = "text/javascript; charset=utf-8"
	}
	if as.ctype == "" {
		as.ctype = http.DetectContentType(raw)
	}
	if len(raw) > 512 && !strings.HasPrefix(as.ctype, "image/png") {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		if b.Len() < len(raw) {
			as.gz = b.Bytes()
		}
	}
	a.c[name] = as
	return as, nil
}

func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, httpx.CodeMethod, "only GET and HEAD are served here")
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	as, err := a.load(name)
	if err != nil {
		writeError(w, http.StatusNotFound, httpx.CodeNotFound, "no such file")
		return
	}
	h := w.Header()
	h.Set("Content-Type", as.ctype)
	h.Set("ETag", as.etag)
	h.Set("Vary", "Accept-Encoding")
	if name == "index.html" || strings.HasSuffix(name, ".html") {
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	} else {
		h.Set("Cache-Control", "public, max-age=3600, must-revalidate")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == as.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := as.raw
	if as.gz != nil && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = as.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

package wasm

import (
	"embed"
	"io/fs"
)

// webFiles holds the browser loader, its WASI shim and the module. The
// module is built by `go generate ./wasm` (see build.go) into
// web/signpost.wasm and committed; TestArtefactIsFresh checks it.
//
//go:embed web/signpost.wasm web/signpost.js web/wasi.js
var webFiles embed.FS

// WebFS is what a web page needs to run the module: signpost.js (the ES
// module loader), wasi.js (its minimal WASI shim) and signpost.wasm, at the
// root of the file system. The node serves it as static files, all from one
// directory (the loader fetches signpost.wasm relative to itself). Serve
// signpost.wasm as application/wasm (Go's MIME table does), which lets the
// browser compile while downloading, and compressed (4.7 MB, 1.35 MB gzipped).
var WebFS fs.FS = mustSub(webFiles, "web")

// Module returns the bytes of the embedded WebAssembly module.
func Module() []byte {
	b, err := webFiles.ReadFile("web/signpost.wasm")
	if err != nil {
		panic("wasm: embedded module missing: " + err.Error())
	}
	return b
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

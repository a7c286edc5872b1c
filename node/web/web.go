package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS is the page's files: index.html, app.js, style.css and NOTICE at its
// root.
var FS fs.FS = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return s
}

package node

import (
	_ "embed"
	"net/http"
)

// openAPI is the API's OpenAPI 3 description, served at /v1/openapi.json. A
// test checks that it lists every route the node serves.
//
//go:embed openapi.json
var openAPI []byte

func (n *Node) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPI)
	return err
}

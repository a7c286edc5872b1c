// Package httpx holds the few HTTP helpers every handler of the node shares:
// the JSON error envelope and its stable error codes, and a bounded JSON
// request decoder.
//
// Every error the node's HTTP API returns has the shape
//
//	{"error":{"code":"csrf_missing","message":"this request needs the X-CSRF-Token header"}}
//
// where code is a stable, machine-readable string (the constants below) and
// message a human sentence. Messages are written by the node, never echo
// request input, and never contain an NHS number, token or key.
package httpx

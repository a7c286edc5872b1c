package wasm

// The committed module is rebuilt from guest/ with the pinned toolchain and
// fixed flags (`go generate ./wasm`); TestArtefactIsFresh rebuilds it with the
// same flags (keep artefact_test.go in step) and fails if the committed bytes
// differ.
//
//go:generate env GOTOOLCHAIN=go1.26.8 GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOFLAGS= go build -buildmode=c-shared -trimpath -buildvcs=false "-ldflags=-s -w" -o web/signpost.wasm ./guest

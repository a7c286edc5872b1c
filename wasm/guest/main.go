//go:build wasip1

// Command guest is the Signpost WebAssembly module: a thin shell that exposes
// package abi's handler through //go:wasmexport functions. Build it with
// `go generate ./wasm` (see wasm/build.go), never by hand, so that the
// committed signpost.wasm stays reproducible. The ABI is documented in
// wasm/internal/abi.
package main

import (
	"crypto/rand"
	"unsafe"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
)

var (
	handler = abi.Handler{Rand: rand.Reader}
	// request is the instance's request buffer; signpost_alloc hands out its
	// address. Go's garbage collector does not move objects, and the global
	// keeps it alive.
	request []byte
	// response keeps the last response alive until the next call.
	response []byte
)

func main() {}

//go:wasmexport signpost_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport signpost_alloc
func alloc(size int32) (ptr uint32) {
	defer func() {
		if recover() != nil {
			ptr = 0
		}
	}()
	if size < 0 || size > abi.MaxMessage {
		return 0
	}
	if size == 0 {
		size = 1
	}
	if int(size) > cap(request) {
		request = make([]byte, size)
	}
	request = request[:cap(request)]
	return uint32(uintptr(unsafe.Pointer(&request[0])))
}

//go:wasmexport signpost_call
func call(op int32, size int32) uint64 {
	var resp []byte
	if size < 0 || int(size) > len(request) {
		resp = []byte{abi.StatusMalformed}
		resp = append(resp, "request size outside the allocated buffer"...)
	} else {
		resp = handler.Handle(op, request[:size])
	}
	response = resp
	if len(resp) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&resp[0])))<<32 | uint64(len(resp))
}

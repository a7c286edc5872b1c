package wasm

import (
	"context"
	"fmt"
	"sync"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
)

// handlerPool reuses native handlers (and their response buffers) between
// calls; a handler serves one call at a time, as a module instance does.
var handlerPool = sync.Pool{New: func() any { return new(abi.Handler) }}

// do runs op on a pooled native handler with the same request and response
// bytes as the module, and decodes the response before the handler is
// reused. Its errors are the module's ([Runtime] returns the same ones).
func (c *NativeClient) do(ctx context.Context, op int32, encode func(dst []byte) []byte, decode func(view []byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := encode(nil)
	if len(req) > abi.MaxMessage {
		return ErrInputTooLarge
	}
	h := handlerPool.Get().(*abi.Handler)
	defer func() {
		h.Rand = nil
		handlerPool.Put(h)
	}()
	h.Rand = c.rnd
	resp := h.Handle(op, req)
	if resp[0] != abi.StatusOK {
		return statusError(resp[0], string(resp[1:]))
	}
	return decode(resp[1:])
}

// call is do with the operation's name in the error, as [Runtime]'s call.
func (c *NativeClient) call(ctx context.Context, op int32, name string, encode func(dst []byte) []byte, decode func(view []byte) error) error {
	if err := c.do(ctx, op, encode, decode); err != nil {
		return fmt.Errorf("wasm: %s: %w", name, err)
	}
	return nil
}

// Validate is [Runtime.Validate], natively: the module's validation source
// (wasm/internal/ident, through the same handler and response encoding)
// compiled natively, so its results, codes and reasons are the module's
// (tests compare them on random inputs on every run).
func (c *NativeClient) Validate(ctx context.Context, scheme, input string) (Result, error) {
	res, err := c.ValidateBatch(ctx, scheme, []string{input})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// ValidateBatch is [Runtime.ValidateBatch], natively (same chunking, limits
// and errors).
func (c *NativeClient) ValidateBatch(ctx context.Context, scheme string, inputs []string) ([]Result, error) {
	return validateBatch(scheme, inputs, func(inputs []string, out []Result) error {
		return c.validateChunk(ctx, scheme, inputs, out)
	})
}

func (c *NativeClient) validateChunk(ctx context.Context, scheme string, inputs []string, out []Result) error {
	if err := checkChunkSize(inputs); err != nil {
		return err
	}
	var in interner
	return c.do(ctx, abi.OpValidateCompact, encodeSchemeInputs(scheme, inputs), func(view []byte) error {
		return decodeValidateCompact(in.str, view, scheme, inputs, out)
	})
}

// interner shares the strings that repeat in a response (system names,
// reasons, ranges), as a module instance's intern table does.
type interner map[string]string

func (m *interner) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if *m == nil {
		*m = map[string]string{}
	}
	if s, ok := (*m)[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(*m) < 4096 {
		(*m)[s] = s
	}
	return s
}

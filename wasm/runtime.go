package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/signpost-federation/signpost/wasm/internal/abi"
	"github.com/signpost-federation/signpost/wasm/internal/token"
)

// Config configures a [Runtime].
type Config struct {
	// Instances is the number of module instances, i.e. how many calls run
	// at once; further callers wait. Default: runtime.GOMAXPROCS(0).
	Instances int
	// CacheDir, if set, is a directory where wazero keeps compiled code
	// across processes. Default "": an in-memory cache shared by every
	// Runtime in the process, so the module is compiled once per process.
	CacheDir string
	// CompileOnUse defers compiling the module until an operation needs
	// it, instead of in New. For short-lived commands that use only part
	// of the module (`signpost ident validate` needs only the validation
	// pool, so it compiles once, not twice). Default false: New compiles
	// the main pool, so a broken module or cache fails at start.
	CompileOnUse bool
	// IssuerPublicKey is the issuer's public key that [Runtime.Tokens]
	// verifies evaluation proofs against, unless the Evaluator implements
	// [IssuerKeyer]. Default: none.
	IssuerPublicKey []byte
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Instances: runtime.GOMAXPROCS(0), CacheDir: "", CompileOnUse: false, IssuerPublicKey: nil}
}

// IssuerKeyer is implemented by Evaluators that know the issuer's public
// key for an epoch; [Runtime.Tokens] prefers it to Config.IssuerPublicKey.
type IssuerKeyer interface {
	IssuerPublicKey(ctx context.Context, epoch uint32) ([]byte, error)
}

// Result is the outcome of validating one identifier.
type Result struct {
	Input      string `json:"input"`
	Valid      bool   `json:"valid"`
	Scheme     string `json:"scheme"`
	System     string `json:"system"`
	Normalized string `json:"normalized,omitempty"`
	Formatted  string `json:"formatted,omitempty"`
	Code       string `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Range      string `json:"range,omitempty"`
}

// Token is one finalized token and the keys derived from it. All three are
// secrets of the holder: never log them.
type Token struct {
	Token     []byte
	LookupKey [16]byte
	SealKey   [32]byte
}

// Blinding is the client state between [Runtime.Blind] and
// [Runtime.Finalize], or, for threshold tokens, between
// [Runtime.BlindThreshold] and [Runtime.Combine] (the two blind in
// different RFC 9497 modes and do not mix). Blinds are secret; Blinded goes
// to the issuer or issuers.
type Blinding struct {
	Scheme  string
	Numbers []string
	Blinds  [][]byte
	Blinded [][]byte
	// verifiable is set by BlindThreshold: Blinded are VOPRF-mode
	// elements, against which Combine may check the proofs as they are.
	verifiable bool
}

// Runtime runs the embedded module under wazero: compiled once, a pool of
// instances, crypto/rand as their random source. Safe for concurrent use;
// Close releases everything.
//
// It keeps two pools of instances. The main one runs the module compiled
// with wazero's context checks (CloseOnContextDone), so that cancelling a
// long call (blinding or finalising thousands of tokens, opening thousands
// of entries) ends it inside the module. Validation runs in a second pool,
// compiled without those checks, which cost about three quarters of its
// time (docs/BENCHMARKS.md, "## wasm"): a validation call is bounded (at
// most 4096 identifiers, a few milliseconds) and ValidateBatch checks the
// context between calls, so cancellation waits for at most one call. The
// validation pool is compiled on first use (and the main one too, with
// Config.CompileOnUse).
type Runtime struct {
	cfg    Config
	random io.Reader // crypto/rand.Reader; tests may replace it
	cache  wazero.CompilationCache
	done   chan struct{}
	closed atomic.Bool

	// Each pool has its own lock, so that compiling one (seconds when
	// cold) never holds up calls to the other.
	mainMu  sync.Mutex
	main    *pool // REQUIRES: mainMu; set by New unless Config.CompileOnUse
	quickMu sync.Mutex
	quick   *pool // REQUIRES: quickMu; nil until the first validation
}

// pool is one wazero runtime, the module compiled for it, and its
// instances.
type pool struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	idle     chan *instance
	slots    chan struct{}
}

// newPool compiles the module (or takes it from cache) into a new wazero
// runtime; interruptible selects wazero's context checks.
func newPool(ctx context.Context, cache wazero.CompilationCache, instances int, interruptible bool) (*pool, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithCloseOnContextDone(interruptible))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: instantiate wasi: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, Module())
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm: compile module: %w", err)
	}
	return &pool{rt: rt, compiled: compiled, idle: make(chan *instance, instances), slots: make(chan struct{}, instances)}, nil
}

// poolFor returns the pool that runs op, creating it on first use: the
// validation pool for validation, the main pool for everything else.
func (r *Runtime) poolFor(ctx context.Context, op int32) (*pool, error) {
	quick := op == abi.OpValidate || op == abi.OpValidateCompact
	mu, p := &r.mainMu, &r.main
	if quick {
		mu, p = &r.quickMu, &r.quick
	}
	mu.Lock()
	defer mu.Unlock()
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if *p == nil {
		np, err := newPool(ctx, r.cache, r.cfg.Instances, !quick)
		if err != nil {
			return nil, err
		}
		*p = np
	}
	return *p, nil
}

var (
	sharedCacheOnce sync.Once
	sharedCache     wazero.CompilationCache
)

// New compiles the module (or takes it from the compilation cache) and
// prepares the instance pool. Instances are created on first use.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Instances == 0 {
		cfg.Instances = DefaultConfig().Instances
	}
	if cfg.Instances < 0 {
		return nil, fmt.Errorf("wasm: config: Instances must not be negative, is %d", cfg.Instances)
	}
	cfg.IssuerPublicKey = append([]byte(nil), cfg.IssuerPublicKey...)
	if len(cfg.IssuerPublicKey) != 0 {
		if _, err := token.ParsePublicKey(cfg.IssuerPublicKey); err != nil {
			return nil, fmt.Errorf("wasm: config: IssuerPublicKey: %w", ErrPublicKey)
		}
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %s: %w", cfg.CacheDir, err)
		}
		cache = c
	} else {
		sharedCacheOnce.Do(func() { sharedCache = wazero.NewCompilationCache() })
		cache = sharedCache
	}
	r := &Runtime{
		cfg:    cfg,
		random: rand.Reader,
		cache:  cache,
		done:   make(chan struct{}),
	}
	if !cfg.CompileOnUse {
		main, err := newPool(ctx, cache, cfg.Instances, true)
		if err != nil {
			return nil, err
		}
		r.main = main
	}
	return r, nil
}

// Close closes every instance and the runtime. It is idempotent; calls in
// flight fail with an error.
func (r *Runtime) Close(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.done)
	r.mainMu.Lock()
	r.quickMu.Lock()
	pools := []*pool{r.main, r.quick}
	r.quickMu.Unlock()
	r.mainMu.Unlock()
	// A cancelled context must not stop Close from releasing everything.
	ctx = context.WithoutCancel(ctx)
	var err error
	for _, p := range pools {
		if p != nil {
			err = errors.Join(err, p.rt.Close(ctx))
		}
	}
	return err
}

// instance is one module instance, used by one goroutine at a time.
type instance struct {
	mod    api.Module
	alloc  api.Function
	call   api.Function
	mem    api.Memory
	stack  [2]uint64
	req    []byte
	bufPtr uint32 // the module's request buffer, from signpost_alloc
	bufCap int
	intern map[string]string
}

func (r *Runtime) newInstance(ctx context.Context, p *pool) (*instance, error) {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithRandSource(r.random). // wazero's default is deterministic
		WithStartFunctions("_initialize")
	mod, err := p.rt.InstantiateModule(ctx, p.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("wasm: instantiate module: %w", err)
	}
	in := &instance{
		mod:    mod,
		alloc:  mod.ExportedFunction("signpost_alloc"),
		call:   mod.ExportedFunction("signpost_call"),
		mem:    mod.Memory(),
		intern: make(map[string]string),
	}
	version := mod.ExportedFunction("signpost_abi_version")
	if in.alloc == nil || in.call == nil || in.mem == nil || version == nil {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: module lacks the signpost exports", ErrABI)
	}
	v, err := version.Call(ctx)
	if err != nil || len(v) != 1 || v[0] != abi.Version {
		_ = mod.Close(ctx)
		return nil, fmt.Errorf("%w: module ABI version is not %d", ErrABI, abi.Version)
	}
	return in, nil
}

// acquire takes an idle instance or creates one within the pool's bound.
func (r *Runtime) acquire(ctx context.Context, p *pool) (*instance, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case in := <-p.idle:
		return in, nil
	default:
	}
	select {
	case in := <-p.idle:
		return in, nil
	case p.slots <- struct{}{}:
		in, err := r.newInstance(ctx, p)
		if err != nil {
			<-p.slots
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if r.closed.Load() {
				return nil, ErrClosed
			}
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.done:
		return nil, ErrClosed
	}
}

// release returns an instance to the pool, or discards it (freeing its
// slot) if it broke or the runtime closed.
func (r *Runtime) release(ctx context.Context, p *pool, in *instance, broken bool) {
	if broken || r.closed.Load() {
		_ = in.mod.Close(context.WithoutCancel(ctx))
		<-p.slots
		return
	}
	p.idle <- in
}

// errBroken marks call failures after which the instance must be discarded.
type errBroken struct{ err error }

func (e errBroken) Error() string { return e.err.Error() }
func (e errBroken) Unwrap() error { return e.err }

// do runs one operation on an instance. view is the response payload (after
// the status byte) in the instance's memory, valid only inside fn.
// encode appends the request to the instance's reusable buffer.
func (r *Runtime) do(ctx context.Context, op int32, encode func(dst []byte) []byte, fn func(in *instance, view []byte) error) error {
	p, err := r.poolFor(ctx, op)
	if err != nil {
		return err
	}
	in, err := r.acquire(ctx, p)
	if err != nil {
		return err
	}
	in.req = encode(in.req[:0])
	err = in.roundTrip(ctx, op, in.req, fn)
	if cap(in.req) > 1<<20 {
		in.req = nil // do not pin a huge buffer in the pool
	}
	var b errBroken
	broken := errors.As(err, &b)
	r.release(ctx, p, in, broken)
	if broken && ctx.Err() != nil {
		return ctx.Err()
	}
	if broken && r.closed.Load() {
		return ErrClosed
	}
	return err
}

// call is do for an operation whose response decodes without the
// instance; an error names the operation ("wasm: blind: …").
func (r *Runtime) call(ctx context.Context, op int32, name string, encode func(dst []byte) []byte, decode func(view []byte) error) error {
	err := r.do(ctx, op, encode, func(_ *instance, view []byte) error { return decode(view) })
	if err != nil {
		return fmt.Errorf("wasm: %s: %w", name, err)
	}
	return nil
}

func (in *instance) roundTrip(ctx context.Context, op int32, req []byte, fn func(in *instance, view []byte) error) error {
	if len(req) > abi.MaxMessage {
		return ErrInputTooLarge
	}
	if len(req) > in.bufCap || in.bufPtr == 0 {
		// The module's request buffer only moves when it grows, so one
		// alloc serves every later call that fits.
		in.stack[0] = uint64(max(len(req), 4096))
		if err := in.alloc.CallWithStack(ctx, in.stack[:]); err != nil {
			return errBroken{fmt.Errorf("%w: alloc: %w", ErrABI, err)}
		}
		in.bufPtr, in.bufCap = uint32(in.stack[0]), max(len(req), 4096)
	}
	ptr := in.bufPtr
	if ptr == 0 || !in.mem.Write(ptr, req) {
		return errBroken{fmt.Errorf("%w: request buffer outside memory", ErrABI)}
	}
	in.stack[0], in.stack[1] = uint64(uint32(op)), uint64(len(req))
	if err := in.call.CallWithStack(ctx, in.stack[:]); err != nil {
		return errBroken{fmt.Errorf("%w: call: %w", ErrABI, err)}
	}
	res := in.stack[0]
	view, ok := in.mem.Read(uint32(res>>32), uint32(res))
	if !ok || len(view) == 0 {
		return errBroken{fmt.Errorf("%w: response outside memory", ErrABI)}
	}
	if view[0] != abi.StatusOK {
		return statusError(view[0], string(view[1:]))
	}
	return fn(in, view[1:])
}

// str returns b as a string, sharing one copy of frequent values.
func (in *instance) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := in.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in.intern) < 4096 {
		in.intern[s] = s
	}
	return s
}

// statusErrors maps the module's status bytes to this package's sentinels;
// a status not listed (malformed request, unknown operation, internal
// failure) is [ErrABI].
var statusErrors = map[byte]error{
	abi.StatusUnknownScheme:  ErrUnknownScheme,
	abi.StatusInvalidPurpose: ErrInvalidPurpose,
	abi.StatusInvalidEpoch:   ErrInvalidEpoch,
	abi.StatusBatchSize:      ErrBatchSize,
	abi.StatusInvalidNumber:  ErrInvalidNumber,
	abi.StatusEncoding:       ErrEncoding,
	abi.StatusProofInvalid:   ErrProofInvalid,
	abi.StatusPublicKey:      ErrPublicKey,
	abi.StatusMismatch:       ErrMismatch,
	abi.StatusTooLarge:       ErrInputTooLarge,
	abi.StatusTooFewPartials: ErrTooFewPartials,
	abi.StatusKeySet:         ErrKeySet,
}

func statusError(status byte, msg string) error {
	base, ok := statusErrors[status]
	if !ok {
		base = ErrABI
	}
	return fmt.Errorf("%w (module status %d: %s)", base, status, msg)
}

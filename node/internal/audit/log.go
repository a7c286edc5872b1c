package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Errors of reading and verifying a log. Verify wraps them in a [*LineError]
// naming the first bad line; use errors.Is to branch.
var (
	// ErrMalformed means a line is not a log line at all: not JSON, a field
	// missing, not in the canonical form the log writes, or too long.
	ErrMalformed = errors.New("audit: malformed line")
	// ErrOutOfOrder means a line carries the wrong index: a line before it
	// was removed, or lines were reordered.
	ErrOutOfOrder = errors.New("audit: line out of order")
	// ErrTampered means a line's content does not hash to the tree head it
	// carries, or its signature fails: the line or one before it was edited.
	ErrTampered = errors.New("audit: line tampered with")
	// ErrTruncated means the log ends early: a final line without its
	// newline, or fewer lines than a trusted tree head.
	ErrTruncated = errors.New("audit: log truncated")
	// ErrClosed is returned by methods of a closed Log.
	ErrClosed = errors.New("audit: log closed")
	// ErrBroken means a write or sync failed, so the file's tail is
	// unknown; the Log refuses further appends until it is reopened.
	ErrBroken = errors.New("audit: log broken by an earlier write failure")
)

// LineError is the error of a bad line. Line is 1-based, as an editor shows it.
type LineError struct {
	Line uint64
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("audit: line %d: %v", e.Line, e.Err) }

// Unwrap returns the wrapped sentinel.
func (e *LineError) Unwrap() error { return e.Err }

// File names in a node's data directory.
const (
	// FileName is the audit log's usual name in the data directory.
	FileName = "audit.log"
	// KeyFileName is the subject-ref key's usual name: FileName + ".key".
	KeyFileName = FileName + ".key"
)

// MaxLineBytes bounds one line of the log; the reader refuses longer ones.
const MaxLineBytes = 64 << 10

// Config holds the options of [Open]. The zero value is usable; see
// [DefaultConfig].
type Config struct {
	// SubjectKeyPath is the file holding the 32-byte audit key that keys
	// subject refs. It is created, mode 0600, if absent. Default: the log's
	// path + ".key".
	SubjectKeyPath string
	// Signer, if set, signs the tree head written on every line, so a line
	// cannot be rewritten without the key. Default: none (the chain of
	// roots still detects any edit that is not followed by rewriting every
	// later line).
	Signer ed25519.PrivateKey
	// HeadPath is the head file ([HeadFileName]): the latest tree head,
	// saved by [Log.SaveHead] and Close, checked by Open. Default: the
	// log's path + ".head".
	HeadPath string
	// Now is the clock that stamps events appended with a zero Time.
	// Default: time.Now.
	Now func() time.Time
	// NoSync skips the fsync after each append. Only for benchmarks and
	// tests: it breaks "acknowledged means on disk". Default: false.
	NoSync bool
}

// DefaultConfig returns the defaults: key file beside the log, no signer,
// the system clock, fsync on every append.
func DefaultConfig() Config {
	return Config{Now: time.Now}
}

// Log is an open audit log: an append-only file of JSON lines, each carrying
// its index and the RFC 9162 tree head after it. It is safe for concurrent use.
type Log struct {
	path   string
	cfg    Config
	key    []byte // subject-ref key
	pubKey ed25519.PublicKey
	cut    int64 // bytes of a torn final line Open cut off

	// Appends are group-committed: each appender adds its line to pending
	// under mu; one of them (the leader) writes and fsyncs everything
	// pending in one go while the others wait on cond. A line's Append
	// returns only once the batch holding it is durable.
	cond *sync.Cond // on mu.Mutex; signalled when a flush ends

	mu struct {
		sync.Mutex
		f        *os.File // set by Open, closed by Close once no flush runs
		leaves   []Hash   // every appended leaf, durable or pending
		cr       compactRange
		durable  TreeHead // head of the durable prefix: what Head reports
		bytes    int64    // length of the durable prefix of the file
		pending  []byte   // lines appended but not yet written
		pendHead TreeHead // head after the last pending line
		open     uint64   // id of the batch collecting lines (from 1)
		synced   uint64   // id of the last durable batch
		flushing bool
		closed   bool
		broken   error // set for good by a failed write or sync
	}
}

// Open opens the log at path, creating it (mode 0600) if absent. An existing
// log is verified line by line first — indexes, the chain of roots and,
// when cfg has a Signer, every line's signature under the signer's public
// key — and refused with the [*LineError] of its first bad line. The one
// fault repaired is a torn final line (no newline: a write that was never
// acknowledged because it did not reach the disk), which is cut off
// ([Log.CutAtOpen] says how many bytes). Lines cut from the end are not
// visible here; witnesses catch them ([VerifyOptions.Heads]).
func Open(path string, cfg Config) (*Log, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SubjectKeyPath == "" {
		cfg.SubjectKeyPath = path + ".key"
	}
	if cfg.HeadPath == "" {
		cfg.HeadPath = path + ".head"
	}
	if cfg.Signer != nil && len(cfg.Signer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: open %s: signer has %d bytes, want %d", path, len(cfg.Signer), ed25519.PrivateKeySize)
	}
	key, err := LoadOrCreateKey(cfg.SubjectKeyPath)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{path: path, cfg: cfg, key: key}
	l.cond = sync.NewCond(&l.mu.Mutex)
	l.mu.open = 1
	if cfg.Signer != nil {
		l.pubKey = cfg.Signer.Public().(ed25519.PublicKey)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	// A log with a signer is this node's own: every line must carry a
	// signature by that key, or a forged line (its root recomputed, or no
	// signature at all) would be accepted and signed over by the lines
	// appended after it. A rotated key therefore means a new log (see the
	// recovery in docs/AUDIT.md).
	saved, err := ReadHeadFile(cfg.HeadPath, l.pubKey)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	opts := scanOptions{publicKey: l.pubKey}
	if saved != nil {
		opts.trusted = []TreeHead{*saved}
	}
	res, err := scan(f, opts, func(_ uint64, _ []byte, leaf Hash) error {
		l.mu.leaves = append(l.mu.leaves, leaf)
		return nil
	})
	if err != nil && !(errors.Is(err, ErrTruncated) && res.torn) {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if res.torn {
		// Never acknowledged: Append returns only after the newline is synced.
		if err := f.Truncate(res.goodBytes); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: open %s: cut torn line: %w", path, err)
		}
		l.cut = res.tornBytes
		// A crash leaves the head file at or before the last durable line;
		// a line cut short by hand after a clean stop does not.
		if saved != nil && res.head.Size < saved.Size {
			f.Close()
			return nil, fmt.Errorf("audit: open %s: %w", path, &LineError{res.head.Size + 1,
				fmt.Errorf("%w: %d whole lines, but the saved tree head (%s) has %d", ErrTruncated, res.head.Size, cfg.HeadPath, saved.Size)})
		}
	}
	if _, err := f.Seek(res.goodBytes, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	for _, lf := range l.mu.leaves {
		l.mu.cr.append(lf)
	}
	l.mu.f = f
	l.mu.durable = res.head
	l.mu.bytes = res.goodBytes
	if err := syncDir(filepath.Dir(path)); err != nil && !cfg.NoSync {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	return l, nil
}

// Append writes e as the next line and returns once it is on disk (fsync).
// A zero e.Time is set from the log's clock; times are stored in UTC.
// Concurrent appends share fsyncs (group commit); each still returns only
// when its own line is durable.
func (l *Log) Append(e Event) (Receipt, error) {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	e.Time = e.Time.UTC()
	if err := e.validate(); err != nil {
		return Receipt{}, err
	}
	ev, err := json.Marshal(e)
	if err != nil {
		return Receipt{}, fmt.Errorf("audit: encode event: %w", err)
	}
	leaf := LeafHash(ev)

	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.mu.closed:
		return Receipt{}, ErrClosed
	case l.mu.broken != nil:
		return Receipt{}, fmt.Errorf("%w: %v", ErrBroken, l.mu.broken)
	}
	index := l.mu.cr.size
	l.mu.cr.append(leaf)
	head := TreeHead{Size: l.mu.cr.size, Root: l.mu.cr.root()}
	if l.cfg.Signer != nil {
		head.Sig = ed25519.Sign(l.cfg.Signer, head.Checkpoint())
	}
	l.mu.leaves = append(l.mu.leaves, leaf)
	l.mu.pending = encodeLine(l.mu.pending, index, ev, head)
	l.mu.pendHead = head
	mine := l.mu.open
	for l.mu.synced < mine {
		switch {
		case l.mu.broken != nil:
			return Receipt{}, fmt.Errorf("%w: line %d not written: %v", ErrBroken, index+1, l.mu.broken)
		case l.mu.flushing:
			l.cond.Wait()
		default:
			l.flushLocked()
		}
	}
	return Receipt{Index: index, Head: head}, nil
}

// flushLocked writes and syncs the pending batch, releasing mu during the
// I/O. REQUIRES: l.mu, !l.mu.flushing.
func (l *Log) flushLocked() {
	buf, head, batch := l.mu.pending, l.mu.pendHead, l.mu.open
	l.mu.pending = nil
	l.mu.open++
	l.mu.flushing = true
	f := l.mu.f
	l.mu.Unlock()
	_, err := f.Write(buf)
	if err == nil && !l.cfg.NoSync {
		err = f.Sync()
	}
	l.mu.Lock()
	l.mu.flushing = false
	if err != nil {
		l.breakLocked(err)
	} else {
		l.mu.bytes += int64(len(buf))
		l.mu.durable = head
		l.mu.synced = batch
	}
	l.cond.Broadcast()
}

// breakLocked marks the log unusable after a failed write or sync: the tree
// in memory holds lines the file may not. It tries to cut the file back to
// its last durable line so that a reopen finds it intact. REQUIRES: l.mu.
func (l *Log) breakLocked(err error) {
	l.mu.broken = err
	if l.mu.f.Truncate(l.mu.bytes) == nil {
		l.mu.f.Sync()
	}
}

// Head returns the current tree head (Size 0 and the empty-tree root for an
// empty log).
func (l *Log) Head() TreeHead {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.durable.Size == 0 {
		return TreeHead{Root: emptyRoot}
	}
	return l.mu.durable
}

// PublicKey returns the key that verifies the log's tree heads, or nil when
// the log is unsigned.
func (l *Log) PublicKey() ed25519.PublicKey { return l.pubKey }

// CutAtOpen returns how many bytes of a torn final line Open cut off (0 if
// none), so that the node can say so at start: a crash mid-append leaves
// such a line, never acknowledged; anything else is refused.
func (l *Log) CutAtOpen() int64 { return l.cut }

// Path returns the log's file name.
func (l *Log) Path() string { return l.path }

// Ref returns the subject ref of a lookup key under this node's audit key.
// The node calls it for every lookup key an operation touches and puts the
// refs in [Event.Subjects].
func (l *Log) Ref(lookupKey []byte) SubjectRef { return refFor(l.key, lookupKey) }

// Refs returns the refs of several lookup keys, in order.
func (l *Log) Refs(lookupKeys ...[]byte) []SubjectRef {
	out := make([]SubjectRef, len(lookupKeys))
	for i, k := range lookupKeys {
		out[i] = l.Ref(k)
	}
	return out
}

// Entry is an event found by a query, with its index in the log.
type Entry struct {
	Index uint64 `json:"index"`
	Event
}

// Subject answers a subject-access request: it reads the log from disk,
// verifying it as it goes, and returns every event that names any of refs, in
// log order. To go from an NHS number to refs, the node computes the number's
// lookup key for each purpose and epoch the log spans and calls [Log.Ref].
func (l *Log) Subject(refs ...SubjectRef) ([]Entry, error) {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	n := l.mu.bytes
	l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("audit: subject query: %w", err)
	}
	defer f.Close()
	return Query(io.LimitReader(f, n), nil, refs...)
}

// Query reads and verifies a log from r and returns the events naming any of
// refs. pub, if not nil, must verify every line's signature.
func Query(r io.Reader, pub ed25519.PublicKey, refs ...SubjectRef) ([]Entry, error) {
	want := make(map[SubjectRef]bool, len(refs))
	for _, ref := range refs {
		want[ref] = true
	}
	var out []Entry
	_, err := scan(r, scanOptions{publicKey: pub}, func(index uint64, raw []byte, _ Hash) error {
		var e Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%w: event is not an audit event", ErrMalformed)
		}
		for _, s := range e.Subjects {
			if want[s] {
				out = append(out, Entry{Index: index, Event: e})
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// InclusionProof proves that the event at index is in the tree of the given
// size (RFC 9162 PATH). It costs O(size) hashing.
func (l *Log) InclusionProof(index, size uint64) ([]Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if size > l.mu.durable.Size {
		return nil, fmt.Errorf("%w: size %d, log has %d", ErrRange, size, l.mu.durable.Size)
	}
	return InclusionProof(l.mu.leaves[:size], index)
}

// ConsistencyProof proves that the tree of size m is a prefix of the tree of
// size n (RFC 9162 PROOF). It costs O(n) hashing.
func (l *Log) ConsistencyProof(m, n uint64) ([]Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > l.mu.durable.Size {
		return nil, fmt.Errorf("%w: size %d, log has %d", ErrRange, n, l.mu.durable.Size)
	}
	return ConsistencyProof(l.mu.leaves[:n], m)
}

// LeafHashAt returns the leaf hash of the event at index.
func (l *Log) LeafHashAt(index uint64) (Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index >= l.mu.durable.Size {
		return Hash{}, fmt.Errorf("%w: index %d, log has %d", ErrRange, index, l.mu.durable.Size)
	}
	return l.mu.leaves[index], nil
}

// Close closes the file. It is idempotent; appends after it fail with
// [ErrClosed].
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil
	}
	l.mu.closed = true
	// Let appends already accepted finish: their appenders flush them.
	for l.mu.flushing || (len(l.mu.pending) > 0 && l.mu.broken == nil) {
		l.cond.Wait()
	}
	var err error
	if l.mu.broken == nil && l.mu.durable.Size > 0 {
		err = writeHeadFile(l.cfg.HeadPath, l.mu.durable, l.cfg.NoSync)
	}
	return errors.Join(err, l.mu.f.Close())
}

// VerifyOptions refine [VerifyWith].
type VerifyOptions struct {
	// PublicKey, if set, must verify the signature on every line.
	PublicKey ed25519.PublicKey
	// Trusted, if set, is a tree head kept elsewhere (by a witness, or
	// printed earlier by `signpost audit head`). The log must reach its
	// size and have its root at that size; this is what detects lines cut
	// from the end.
	Trusted *TreeHead
	// Heads are more trusted tree heads, each checked like Trusted: the
	// heads that witnesses hold for this log (`audit verify --witnessed`).
	// Their signatures are the caller's to check.
	Heads []TreeHead
}

// trusted returns every trusted head of o.
func (o VerifyOptions) trusted() []TreeHead {
	out := append([]TreeHead(nil), o.Heads...)
	if o.Trusted != nil {
		out = append(out, *o.Trusted)
	}
	return out
}

// Verify reads a whole log from r and checks every line: its index, its
// event, and the tree head it carries. It returns the final tree head, or a
// [*LineError] naming the first bad line and wrapping [ErrMalformed],
// [ErrOutOfOrder], [ErrTampered] or [ErrTruncated]. Removing whole lines from
// the end is only detectable against a trusted head: see [VerifyWith].
func Verify(r io.Reader) (TreeHead, error) {
	return VerifyWith(r, VerifyOptions{})
}

// VerifyWith is [Verify] with a public key and a trusted tree head.
func VerifyWith(r io.Reader, opts VerifyOptions) (TreeHead, error) {
	res, err := scan(r, scanOptions{publicKey: opts.PublicKey, trusted: opts.trusted()}, nil)
	return res.head, err
}

// ReadLeaves verifies a log like [VerifyWith] and also returns every leaf
// hash, from which [InclusionProof] and [ConsistencyProof] can be computed
// without opening the log for writing (as `signpost audit prove` does).
func ReadLeaves(r io.Reader, opts VerifyOptions) ([]Hash, TreeHead, error) {
	var leaves []Hash
	res, err := scan(r, scanOptions{publicKey: opts.PublicKey, trusted: opts.trusted()}, func(_ uint64, _ []byte, leaf Hash) error {
		leaves = append(leaves, leaf)
		return nil
	})
	return leaves, res.head, err
}

type scanOptions struct {
	publicKey ed25519.PublicKey
	trusted   []TreeHead
}

type scanResult struct {
	head      TreeHead
	goodBytes int64 // bytes of the verified prefix
	torn      bool  // the only fault is a final line without newline
	tornBytes int64 // the length of that line
}

// envelope is the decoded form of one line.
type envelope struct {
	I     *uint64         `json:"i"`
	Event json.RawMessage `json:"event"`
	Root  *Hash           `json:"root"`
	Sig   []byte          `json:"sig"`
}

// encodeLine appends the canonical line for an event: the only form the log
// writes and the only one the reader accepts.
func encodeLine(b []byte, index uint64, event []byte, head TreeHead) []byte {
	b = append(b, `{"i":`...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, `,"event":`...)
	b = append(b, event...)
	b = append(b, `,"root":"`...)
	root, _ := head.Root.MarshalText()
	b = append(b, root...)
	b = append(b, '"')
	if len(head.Sig) > 0 {
		b = append(b, `,"sig":"`...)
		b = base64.StdEncoding.AppendEncode(b, head.Sig)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	return b
}

// decodeLine parses one line (without its newline) and checks that it is in
// canonical form. It returns the index, the raw event bytes and the head the
// line claims.
func decodeLine(line []byte) (uint64, []byte, TreeHead, error) {
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return 0, nil, TreeHead{}, fmt.Errorf("%w: not a JSON object of the log's shape", ErrMalformed)
	}
	if env.I == nil || env.Event == nil || env.Root == nil {
		return 0, nil, TreeHead{}, fmt.Errorf("%w: missing i, event or root", ErrMalformed)
	}
	head := TreeHead{Size: *env.I + 1, Root: *env.Root, Sig: env.Sig}
	if *env.I == ^uint64(0) {
		return 0, nil, TreeHead{}, fmt.Errorf("%w: index out of range", ErrMalformed)
	}
	if !bytes.Equal(encodeLine(nil, *env.I, env.Event, head), append(line, '\n')) {
		return 0, nil, TreeHead{}, fmt.Errorf("%w: not in the canonical form the log writes", ErrMalformed)
	}
	var e Event
	if err := json.Unmarshal(env.Event, &e); err != nil {
		return 0, nil, TreeHead{}, fmt.Errorf("%w: event is not an audit event", ErrMalformed)
	}
	return *env.I, env.Event, head, nil
}

// scan reads lines from r, verifying each, and calls fn (if not nil) with
// every good line's index, raw event and leaf hash.
func scan(r io.Reader, opts scanOptions, fn func(index uint64, event []byte, leaf Hash) error) (scanResult, error) {
	var (
		res    scanResult
		cr     compactRange
		br     = bufio.NewReaderSize(r, MaxLineBytes+1)
		lineNo uint64
	)
	res.head.Root = emptyRoot
	for {
		line, err := br.ReadSlice('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		lineNo++
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return res, &LineError{lineNo, fmt.Errorf("%w: over %d bytes", ErrMalformed, MaxLineBytes)}
		case err == io.EOF:
			res.torn, res.tornBytes = true, int64(len(line))
			return res, &LineError{lineNo, fmt.Errorf("%w: the last line has no newline (a torn write)", ErrTruncated)}
		case err != nil:
			return res, fmt.Errorf("audit: read line %d: %w", lineNo, err)
		}
		index, event, claimed, err := decodeLine(line[:len(line)-1])
		if err != nil {
			return res, &LineError{lineNo, err}
		}
		if index != cr.size {
			return res, &LineError{lineNo, fmt.Errorf("%w: index %d where %d belongs (a line was removed, inserted or moved)", ErrOutOfOrder, index, cr.size)}
		}
		leaf := LeafHash(event)
		cr.append(leaf)
		if root := cr.root(); root != claimed.Root {
			return res, &LineError{lineNo, fmt.Errorf("%w: the tree head on the line does not match the lines up to it", ErrTampered)}
		}
		if opts.publicKey != nil {
			if err := claimed.VerifySignature(opts.publicKey); err != nil {
				return res, &LineError{lineNo, err}
			}
		}
		for _, t := range opts.trusted {
			if t.Size == claimed.Size && t.Root != claimed.Root {
				return res, &LineError{lineNo, fmt.Errorf("%w: root differs from the trusted tree head of size %d (a fork)", ErrTampered, t.Size)}
			}
		}
		if fn != nil {
			if err := fn(index, event, leaf); err != nil {
				return res, &LineError{lineNo, err}
			}
		}
		res.head = claimed
		res.goodBytes += int64(len(line))
	}
	for _, t := range opts.trusted {
		if res.head.Size < t.Size {
			return res, &LineError{lineNo + 1, fmt.Errorf("%w: %d lines, but a trusted tree head has %d", ErrTruncated, res.head.Size, t.Size)}
		}
	}
	return res, nil
}

// LoadOrCreateKey reads the 32-byte audit key at path, or creates it with
// fresh random bytes and mode 0600 when the file does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != 32 {
			return nil, fmt.Errorf("audit key %s: has %d bytes, want 32", path, len(b))
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("audit key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

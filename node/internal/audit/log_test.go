package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// testKey is a fixed signing key so golden logs are reproducible (Ed25519
// signatures are deterministic).
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// fixedClock returns a clock that starts at a fixed instant and moves one
// second a call.
func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// openTest opens a log in a fresh directory with a fixed audit key.
func openTest(t *testing.T, signer ed25519.PrivateKey) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path+".key", bytes.Repeat([]byte{9}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Config{Signer: signer, Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// lookupKey is a synthetic 16-byte lookup key.
func lookupKey(i int) []byte {
	return bytes.Repeat([]byte{byte(i)}, 16)
}

// sampleEvents is the golden log's content: one of each kind of event.
func sampleEvents(l *Log) []Event {
	return []Event{
		{Actor: "user:alice", Action: ActionEvaluate, Purpose: "safeguarding", Count: 1, Outcome: OutcomeOK},
		{Actor: "user:alice", Action: ActionLookup, Purpose: "safeguarding", Count: 2, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(1))},
		{Actor: "user:alice", Action: ActionContactRequestSent, Purpose: "safeguarding", Count: 1, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(1)), Peer: "node-school"},
		{Actor: "node:node-gp", Action: ActionContactRequestReceived, Purpose: "safeguarding", Count: 1, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(2)), Peer: "node-gp", Record: "case-17"},
		{Actor: "user:alice", Action: ActionWatch, Count: 1, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(1))},
		{Actor: "user:olu", Action: ActionRecordCreate, Count: 1, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(2), lookupKey(3)), Record: "case-18"},
		{Actor: "user:olu", Action: ActionObjection, Count: 1, Outcome: OutcomeOK, Subjects: l.Refs(lookupKey(2)), Record: "case-17"},
		{Actor: "user:bob", Action: ActionLookup, Purpose: "direct-care", Outcome: OutcomeDenied, Detail: "rate limited"},
	}
}

func writeSample(t *testing.T, signer ed25519.PrivateKey) (*Log, string) {
	t.Helper()
	l, path := openTest(t, signer)
	for _, e := range sampleEvents(l) {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	return l, path
}

func TestGoldenLog(t *testing.T) {
	_, path := writeSample(t, testKey)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "signed.log")
	testutil.Golden(t, golden, got)
	// The committed log itself must verify, whether or not it was just
	// rewritten.
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	head, err := VerifyWith(bytes.NewReader(want), VerifyOptions{PublicKey: testKey.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatalf("golden log does not verify: %v", err)
	}
	if head.Size != uint64(len(sampleEvents(&Log{}))) {
		t.Errorf("head size %d", head.Size)
	}
}

// lines splits a log into lines, each with its newline.
func lines(b []byte) [][]byte {
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func join(ls [][]byte) []byte { return bytes.Join(ls, nil) }

func TestVerifyDetectsTampering(t *testing.T) {
	intact, err := os.ReadFile(filepath.Join("testdata", "signed.log"))
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(intact)
	if len(ls) != 8 {
		t.Fatalf("golden log has %d lines", len(ls))
	}
	pub := testKey.Public().(ed25519.PublicKey)
	intactHead, err := Verify(bytes.NewReader(intact))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(i int, old, new string) []byte {
		c := make([][]byte, len(ls))
		copy(c, ls)
		if !bytes.Contains(c[i], []byte(old)) {
			t.Fatalf("line %d has no %q", i+1, old)
		}
		c[i] = bytes.Replace(c[i], []byte(old), []byte(new), 1)
		return join(c)
	}
	without := func(i int) []byte {
		c := append([][]byte(nil), ls[:i]...)
		return join(append(c, ls[i+1:]...))
	}
	swap := func(i, j int) []byte {
		c := append([][]byte(nil), ls...)
		c[i], c[j] = c[j], c[i]
		return join(c)
	}
	// rewritten edits line 3 and recomputes every root after it, as an
	// attacker without the signing key would: only the signature catches it.
	rewritten := func() []byte {
		var cr compactRange
		var out []byte
		for i, l := range ls {
			_, ev, head, err := decodeLine(bytes.TrimSuffix(l, []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			if i == 2 {
				ev = bytes.Replace(ev, []byte(`"node-school"`), []byte(`"node-other"`), 1)
			}
			cr.append(LeafHash(ev))
			head.Root = cr.root()
			out = encodeLine(out, uint64(i), ev, head)
		}
		return out
	}()
	tests := []struct {
		name     string
		log      []byte
		opts     VerifyOptions
		wantErr  error
		wantLine uint64
	}{
		{name: "edit a field (action)", log: edit(1, `"action":"lookup"`, `"action":"watch"`), wantErr: ErrTampered, wantLine: 2},
		{name: "edit a count", log: edit(1, `"count":2`, `"count":1`), wantErr: ErrTampered, wantLine: 2},
		{name: "edit a subject ref", log: edit(4, RefFor(bytes.Repeat([]byte{9}, 32), lookupKey(1)).String(), RefFor(bytes.Repeat([]byte{9}, 32), lookupKey(7)).String()), wantErr: ErrTampered, wantLine: 5},
		{name: "edit the last line", log: edit(7, `"user:bob"`, `"user:eve"`), wantErr: ErrTampered, wantLine: 8},
		{name: "edit a root", log: edit(3, `"root":"`, `"root":"0`), wantErr: ErrMalformed, wantLine: 4},
		{name: "extra whitespace", log: edit(5, `,"root"`, `, "root"`), wantErr: ErrMalformed, wantLine: 6},
		{name: "delete the first line", log: without(0), wantErr: ErrOutOfOrder, wantLine: 1},
		{name: "delete a middle line", log: without(3), wantErr: ErrOutOfOrder, wantLine: 4},
		{name: "swap two lines", log: swap(4, 5), wantErr: ErrOutOfOrder, wantLine: 5},
		{name: "duplicate a line", log: join(append(append(append([][]byte(nil), ls[:3]...), ls[2]), ls[3:]...)), wantErr: ErrOutOfOrder, wantLine: 4},
		{name: "truncate mid-line", log: intact[:len(intact)-20], wantErr: ErrTruncated, wantLine: 8},
		{name: "drop the last line, against a trusted head", log: without(7), opts: VerifyOptions{Trusted: &intactHead}, wantErr: ErrTruncated, wantLine: 8},
		{name: "rewrite and recompute roots, signed", log: rewritten, opts: VerifyOptions{PublicKey: pub}, wantErr: ErrTampered, wantLine: 3},
		{name: "rewrite and recompute roots, trusted head", log: rewritten, opts: VerifyOptions{Trusted: &intactHead}, wantErr: ErrTampered, wantLine: 8},
		{name: "not JSON", log: append(append([]byte(nil), intact...), "hello\n"...), wantErr: ErrMalformed, wantLine: 9},
		{name: "over-long line", log: append(bytes.Repeat([]byte("x"), MaxLineBytes+10), '\n'), wantErr: ErrMalformed, wantLine: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyWith(bytes.NewReader(tt.log), tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("err %v is not a *LineError", err)
			}
			if le.Line != tt.wantLine {
				t.Errorf("line = %d, want %d (%v)", le.Line, tt.wantLine, err)
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		if _, err := VerifyWith(bytes.NewReader(intact), VerifyOptions{PublicKey: pub, Trusted: &intactHead}); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(bytes.NewReader(rewritten)); err != nil {
			t.Fatalf("a consistent rewrite passes an unsigned, unwitnessed check (documented limit), got %v", err)
		}
	})
}

func TestAppendReopenVerify(t *testing.T) {
	l, path := writeSample(t, nil)
	head := l.Head()
	if head.Size != 8 || len(head.Sig) != 0 {
		t.Fatalf("head = %+v", head)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	l2, err := Open(path, Config{Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Head().Root != head.Root {
		t.Fatal("reopened log has another head")
	}
	r, err := l2.Append(Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK})
	if err != nil {
		t.Fatal(err)
	}
	if r.Index != 8 || r.Head.Size != 9 {
		t.Fatalf("receipt = %+v", r)
	}
	f, _ := os.ReadFile(path)
	got, err := Verify(bytes.NewReader(f))
	if err != nil || got.Root != r.Head.Root {
		t.Fatalf("verify: %v, head %v vs %v", err, got.Root, r.Head.Root)
	}
	// Proofs from the log agree with the heads it gave.
	proof, err := l2.ConsistencyProof(8, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(8, 9, proof, head.Root, r.Head.Root); err != nil {
		t.Fatal(err)
	}
	leaf, _ := l2.LeafHashAt(3)
	ip, err := l2.InclusionProof(3, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInclusion(leaf, 3, 9, ip, r.Head.Root); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCutsTornLineAndRefusesTampered(t *testing.T) {
	l, path := writeSample(t, nil)
	head := l.Head()
	l.Close()
	intact, _ := os.ReadFile(path)

	// A torn final write: never acknowledged, so cut.
	if err := os.WriteFile(path, append(append([]byte(nil), intact...), `{"i":8,"event":{"ti`...), 0o600); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path, Config{})
	if err != nil {
		t.Fatalf("open with torn tail: %v", err)
	}
	if l2.Head().Root != head.Root {
		t.Fatal("head changed after cutting the torn line")
	}
	if _, err := l2.Append(Event{Actor: "user:a", Action: ActionWatch, Outcome: OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	b, _ := os.ReadFile(path)
	if _, err := Verify(bytes.NewReader(b)); err != nil {
		t.Fatalf("after cut and append: %v", err)
	}

	// A tampered log is refused, naming the line.
	tampered := bytes.Replace(intact, []byte(`"user:olu"`), []byte(`"user:eve"`), 1)
	os.WriteFile(path, tampered, 0o600)
	_, err = Open(path, Config{})
	var le *LineError
	if !errors.Is(err, ErrTampered) || !errors.As(err, &le) || le.Line != 6 {
		t.Fatalf("open tampered: %v", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	l, path := openTest(t, testKey)
	l.cfg.NoSync = true // the hammer checks ordering, not the disk
	const workers, each = 8, 50
	var wg sync.WaitGroup
	seen := make([]bool, workers*each)
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := l.Append(Event{Actor: fmt.Sprintf("user:w%d", w), Action: ActionLookup, Count: i, Outcome: OutcomeOK})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[r.Index] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, ok := range seen {
		if !ok {
			t.Fatalf("index %d never returned", i)
		}
	}
	b, _ := os.ReadFile(path)
	head, err := VerifyWith(bytes.NewReader(b), VerifyOptions{PublicKey: testKey.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != workers*each || head.Root != l.Head().Root {
		t.Fatalf("head %d %v, log head %v", head.Size, head.Root, l.Head().Root)
	}
}

func TestSubjectAccess(t *testing.T) {
	l, _ := writeSample(t, nil)
	got, err := l.Subject(l.Ref(lookupKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, e := range got {
		idx = append(idx, e.Index)
	}
	if fmt.Sprint(idx) != "[1 2 4]" {
		t.Errorf("lookup key 1 events at %v, want [1 2 4]", idx)
	}
	got, _ = l.Subject(l.Ref(lookupKey(2)), l.Ref(lookupKey(3)))
	if len(got) != 3 || got[0].Action != ActionContactRequestReceived || got[1].Record != "case-18" {
		t.Errorf("lookup keys 2, 3: %+v", got)
	}
	got, _ = l.Subject(l.Ref(lookupKey(99)))
	if len(got) != 0 {
		t.Errorf("unknown subject: %+v", got)
	}
	// A ref under another audit key matches nothing.
	if got, _ := l.Subject(RefFor(bytes.Repeat([]byte{1}, 32), lookupKey(1))); len(got) != 0 {
		t.Errorf("foreign key matched %d events", len(got))
	}
}

func TestAppendRefusesBadEvents(t *testing.T) {
	l, _ := openTest(t, nil)
	tests := []struct {
		name string
		e    Event
		want error
	}{
		{"no actor", Event{Action: ActionLookup, Outcome: OutcomeOK}, ErrInvalidEvent},
		{"bad action", Event{Actor: "user:a", Action: "Look Up", Outcome: OutcomeOK}, ErrInvalidEvent},
		{"no outcome", Event{Actor: "user:a", Action: ActionLookup}, ErrInvalidEvent},
		{"negative count", Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Count: -1}, ErrInvalidEvent},
		{"NHS number in detail", Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Detail: "looked up 9990000018"}, ErrIdentifierInEvent},
		{"spaced NHS number in detail", Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Detail: "for 999 000 0018 today"}, ErrIdentifierInEvent},
		{"hyphenated NHS number in purpose", Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Purpose: "999-000-0018"}, ErrIdentifierInEvent},
		{"long field", Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Detail: strings.Repeat("a", 600)}, ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Append(tt.e); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(tt.want), "999") {
				t.Fatal("error quotes the number")
			}
		})
	}
	if l.Head().Size != 0 {
		t.Fatal("a refused event was written")
	}
	if _, err := l.Append(Event{Actor: "user:a", Action: ActionLookup, Outcome: OutcomeOK, Detail: "3 entries, 12 ms"}); err != nil {
		t.Fatalf("short numbers are fine: %v", err)
	}
}

// TestNoSecretsInLog is the audit side of the log scanner: a log written
// from lookups holds neither the lookup keys nor anything that looks like an
// NHS number.
func TestNoSecretsInLog(t *testing.T) {
	l, path := writeSample(t, testKey)
	_ = l
	b, _ := os.ReadFile(path)
	for i := 0; i < 5; i++ {
		k := lookupKey(i)
		for _, enc := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k)} {
			if bytes.Contains(b, []byte(enc)) {
				t.Fatalf("log contains lookup key %d", i)
			}
		}
	}
	key, _ := os.ReadFile(path + ".key")
	if bytes.Contains(b, []byte(hex.EncodeToString(key))) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(key))) {
		t.Fatal("log contains the audit key")
	}
	if hasDigitRun(string(b), 10) {
		// Hex roots can hold digit runs by chance; the sample's do not.
		t.Log("note: a 10-digit run appears (expected only by chance in hex)")
	}
	st, _ := os.Stat(path + ".key")
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
}

func TestTreeHeadSignature(t *testing.T) {
	l, _ := writeSample(t, testKey)
	h := l.Head()
	pub := l.PublicKey()
	if err := h.VerifySignature(pub); err != nil {
		t.Fatal(err)
	}
	h.Size--
	if err := h.VerifySignature(pub); !errors.Is(err, ErrTampered) {
		t.Fatalf("changed size: %v", err)
	}
	if !strings.HasPrefix(string(h.Checkpoint()), "signpost-audit/v1\n") {
		t.Fatalf("checkpoint %q", h.Checkpoint())
	}
}

func TestHasDigitRun(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"9990000018", true},
		{"999 000 0018", true},
		{"999-000-0018", true},
		{"999  000 0018", false}, // two spaces break the run
		{"123456789", false},
		{"a 12345 b 67890", false},
		{"x1234567890y", true},
	}
	for _, tt := range tests {
		if got := hasDigitRun(tt.s, 10); got != tt.want {
			t.Errorf("hasDigitRun(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestReopenWithAnotherKeyRefused: a log is its signer's. Opened with
// another key (a rotation, or another node's data directory) it is refused,
// since none of its lines verify under the new key, rather than continued
// with lines that no single key verifies.
func TestReopenWithAnotherKeyRefused(t *testing.T) {
	l, path := writeSample(t, testKey)
	l.Close()
	os.Remove(path + ".head") // the lines themselves, not only the head file
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	_, err := Open(path, Config{Signer: other})
	var le *LineError
	if !errors.Is(err, ErrTampered) || !errors.As(err, &le) || le.Line != 1 {
		t.Fatalf("reopen with another key: %v", err)
	}
	if l2, err := Open(path, Config{Signer: testKey}); err != nil {
		t.Fatalf("reopen with its own key: %v", err)
	} else {
		l2.Close()
	}
}

// TestMain fails the run if a goroutine outlives the tests (the
// concurrency tests append from many goroutines).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

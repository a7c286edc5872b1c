package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/signpost-federation/signpost/wasm"
)

// TokenEnv is the environment variable that carries the API token (the
// other way is --token-file; never a flag, which `ps` would show).
const TokenEnv = "SIGNPOST_TOKEN"

// progressMin is the input length from which a terminal shows a progress
// bar.
const progressMin = 1000

// hooks are what tests replace: the environment, the clock's waits, the
// HTTP client, whether stderr is a terminal, and the wall clock of the
// progress bar and summary.
type hooks struct {
	getenv     func(string) string
	sleep      func(ctx context.Context, d time.Duration) error
	http       *http.Client
	isTerminal func(io.Writer) bool
	now        func() time.Time
}

func defaultHooks() hooks {
	return hooks{getenv: os.Getenv, isTerminal: isTerminal, now: time.Now}
}

// LocateMain is the `signpost locate` command. Exit codes follow `signpost
// ident validate`'s: 0 every line was located (found or none), 1 a line was
// invalid or failed (or the run failed), 2 usage.
func LocateMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return locateMain(ctx, args, stdin, stdout, stderr, defaultHooks())
}

func locateUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: signpost locate --node URL --purpose P [--json] [--resume FILE] [--token-file FILE] [NUMBER...]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Finds which other agencies hold a record for each NHS number, through one node,")
	fmt.Fprintln(w, "without the numbers leaving this machine: each is validated, blinded and turned")
	fmt.Fprintln(w, "into a token in the wasm module here; only blinded elements and lookup keys are")
	fmt.Fprintln(w, "sent, and the entries that come back are opened here.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "With no NUMBER, reads one per line from stdin. One output line per input, in order:")
	fmt.Fprintln(w, "  found<TAB>agency<TAB>agency...   other agencies hold a record (this node's own left out)")
	fmt.Fprintln(w, "  none                             no other agency holds one")
	fmt.Fprintln(w, "  invalid<TAB>code<TAB>reason      not a valid number (the reason never names a digit)")
	fmt.Fprintln(w, "  failed<TAB>code<TAB>message      it could not be located; run again (with --resume)")
	fmt.Fprintln(w, "or, with --json, one object per line: {\"line\",\"status\",\"holders\",\"selfHolds\",\"code\",\"reason\"}.")
	fmt.Fprintln(w, "Exit 0 if every line was located, 1 if any was invalid or failed, 2 on usage errors.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The API token is read from $"+TokenEnv+", or from --token-file FILE, which only its")
	fmt.Fprintln(w, "owner may read or write (chmod 600). A 429 is waited out as its Retry-After says; a")
	fmt.Fprintln(w, "503 (too few token issuers) is retried a few times before its lines are reported failed.")
	fmt.Fprintln(w, "--resume FILE records finished lines (by line number and a short keyed hash, never the")
	fmt.Fprintln(w, "number) and skips them when the same input is run again: append the output (>>).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
}

func locateMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, h hooks) int {
	fs := flag.NewFlagSet("signpost locate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { locateUsage(fs.Output()); fs.PrintDefaults() }
	nodeURL := fs.String("node", "", "the node's base `URL`, e.g. http://127.0.0.1:8080 (required)")
	purpose := fs.String("purpose", "", "the `purpose` of the lookups, one the node is authorised for (required)")
	asJSON := fs.Bool("json", false, "print one JSON object per input")
	resumePath := fs.String("resume", "", "`FILE` recording finished lines; skip those an earlier run finished")
	tokenFile := fs.String("token-file", "", "read the API token from `FILE` (mode 600) instead of $"+TokenEnv)
	batch := fs.Int("batch", 256, "blinded elements per evaluate call (at most the node's max_batch)")
	lookups := fs.Int("lookups", 8, "lookups in flight at once")
	cacheFlag := fs.String(wasm.CacheFlag, "", wasm.CacheFlagUsage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *nodeURL == "" || *purpose == "" {
		fmt.Fprintln(stderr, "signpost locate: --node URL and --purpose P are required (-h for help)")
		return 2
	}
	token, err := readToken(*tokenFile, h.getenv)
	if err != nil {
		fmt.Fprintln(stderr, "signpost locate:", err)
		return 2
	}
	lines := fs.Args()
	if len(lines) == 0 {
		if lines, err = readLines(stdin); err != nil {
			fmt.Fprintln(stderr, "signpost locate: read stdin:", err)
			return 1
		}
	}
	var rs *resume
	if *resumePath != "" {
		if rs, err = openResume(*resumePath); err != nil {
			fmt.Fprintln(stderr, "signpost locate:", err)
			return 1
		}
		defer rs.close()
	}
	rt, err := wasm.New(ctx, wasm.Config{Instances: runtime.GOMAXPROCS(0), CacheDir: wasm.CommandCacheDir(*cacheFlag, stderr), CompileOnUse: true})
	if err != nil {
		fmt.Fprintln(stderr, "signpost locate:", err)
		return 1
	}
	defer rt.Close(context.WithoutCancel(ctx))
	c, err := New(rt, Config{Node: *nodeURL, Purpose: *purpose, Token: token, Batch: *batch, Lookups: *lookups, HTTP: h.http, Sleep: h.sleep})
	if err != nil {
		fmt.Fprintln(stderr, "signpost locate:", err)
		return 2
	}
	defer c.Close()
	r := &run{c: c, rs: rs, json: *asJSON, out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr, now: h.now}
	if h.isTerminal(stderr) {
		r.bar = &progress{w: stderr, now: h.now}
	}
	return r.do(ctx, lines)
}

// readToken returns the API token: from file if named (refused unless only
// its owner may read and write it), else from $SIGNPOST_TOKEN.
func readToken(file string, getenv func(string) string) (string, error) {
	if file == "" {
		if t := strings.TrimSpace(getenv(TokenEnv)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("no API token: set $%s or give --token-file FILE", TokenEnv)
	}
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is open to other users (mode %v): chmod 600 it", file, st.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, "\r\n") {
		return "", fmt.Errorf("token file %s must hold one token on one line", file)
	}
	return t, nil
}

// readLines reads r's lines (a trailing CR removed; at most 1 MiB each).
func readLines(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var out []string
	for sc.Scan() {
		out = append(out, strings.TrimSuffix(sc.Text(), "\r"))
	}
	return out, sc.Err()
}

// run is one `signpost locate` over its input.
type run struct {
	c      *Client
	rs     *resume
	json   bool
	out    *bufio.Writer
	stderr io.Writer
	bar    *progress
	now    func() time.Time

	counts map[Status]int
}

// job is a batch of input lines on its way: located by a worker, written
// in input order by run.do.
type job struct {
	nums  []int // 1-based line numbers
	lines []string
	out   []Line
	err   error
	done  chan struct{}
}

// batchWorkers is how many batches are located at once: one blinds or
// combines in the module while another waits on the node.
const batchWorkers = 2

func (r *run) do(ctx context.Context, lines []string) int {
	start := r.now()
	r.counts = map[Status]int{}
	skipped := 0
	var jobs []*job
	var cur *job
	for i, l := range lines {
		if r.rs != nil && r.rs.finished(i+1, l) {
			skipped++
			continue
		}
		if cur == nil || len(cur.lines) == r.c.cfg.Batch {
			cur = &job{done: make(chan struct{})}
			jobs = append(jobs, cur)
		}
		cur.nums = append(cur.nums, i+1)
		cur.lines = append(cur.lines, l)
	}
	total := len(lines) - skipped
	if r.bar != nil && total < progressMin {
		r.bar = nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, batchWorkers)
	wg.Add(1)
	go func() { // the launcher: starts the jobs in order, batchWorkers at a time
		defer wg.Done()
		for k, j := range jobs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, j := range jobs[k:] { // never started
					j.err = ctx.Err()
					close(j.done)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				j.out, j.err = r.c.Locate(ctx, j.lines)
				close(j.done)
			}()
		}
	}()
	var err error
	doneLines := 0
	for _, j := range jobs {
		// Every job ends (a worker's Locate returns soon after
		// cancellation; the launcher ends those it did not start), so the
		// jobs that finished before an interruption are still written.
		<-j.done
		err = j.err
		if err == nil {
			err = r.write(j)
		}
		if err != nil {
			break
		}
		doneLines += len(j.lines)
		if r.bar != nil {
			r.bar.show(doneLines, total, start)
		}
	}
	cancel()
	wg.Wait()
	if ferr := r.out.Flush(); err == nil {
		err = ferr
	}
	if r.bar != nil {
		r.bar.clear()
	}
	took := r.now().Sub(start)
	fmt.Fprintf(r.stderr, "signpost locate: %d lines in %.1f s (%s lines/s): %d found, %d none, %d invalid, %d failed",
		doneLines, took.Seconds(), rate(doneLines, took), r.counts[StatusFound], r.counts[StatusNone], r.counts[StatusInvalid], r.counts[StatusFailed])
	if skipped > 0 {
		fmt.Fprintf(r.stderr, "; %d skipped (finished before, --resume)", skipped)
	}
	fmt.Fprintln(r.stderr)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(r.stderr, "signpost locate: interrupted; finished lines are written", resumeHint(r.rs))
		} else {
			fmt.Fprintln(r.stderr, "signpost locate:", err)
		}
		return 1
	}
	if r.counts[StatusInvalid] > 0 || r.counts[StatusFailed] > 0 {
		return 1
	}
	return 0
}

func resumeHint(rs *resume) string {
	if rs == nil {
		return "(run with --resume FILE to skip them next time)"
	}
	return "and recorded in the resume file"
}

func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(n)/d.Seconds(), 'f', 0, 64)
}

// write prints a finished job's lines, flushes them, and only then records
// them as finished in the resume file (a line is never recorded but not
// printed; one printed but not recorded, if the run is killed between, is
// done again). Failed lines are not recorded.
func (r *run) write(j *job) error {
	for i, l := range j.out {
		r.counts[l.Status]++
		var err error
		if r.json {
			err = r.writeJSON(j.nums[i], l)
		} else {
			r.writePlain(l)
		}
		if err != nil {
			return err
		}
	}
	if err := r.out.Flush(); err != nil {
		return err
	}
	if r.rs == nil {
		return nil
	}
	var nums []int
	var lines []string
	for i, l := range j.out {
		if l.Status != StatusFailed {
			nums = append(nums, j.nums[i])
			lines = append(lines, j.lines[i])
		}
	}
	return r.rs.record(nums, lines)
}

func (r *run) writePlain(l Line) {
	w := r.out
	w.WriteString(string(l.Status))
	switch l.Status {
	case StatusFound:
		for _, h := range l.Holders {
			w.WriteByte('\t')
			w.WriteString(oneField(h.Agency))
		}
	case StatusInvalid, StatusFailed:
		w.WriteByte('\t')
		w.WriteString(oneField(l.Code))
		w.WriteByte('\t')
		w.WriteString(oneField(l.Reason))
	}
	w.WriteByte('\n')
}

// jsonLine is a line of --json output.
type jsonLine struct {
	N int `json:"line"` // the input's line number, 1-based
	Line
}

func (r *run) writeJSON(n int, l Line) error {
	b, err := json.Marshal(jsonLine{N: n, Line: l})
	if err != nil {
		return err
	}
	r.out.Write(b)
	return r.out.WriteByte('\n')
}

// oneField makes s one field of a tab-separated line: control characters
// (tabs, newlines; a node's text is not ours to trust) become spaces.
func oneField(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress is the progress bar on a terminal's stderr: one line redrawn
// at most every 200 ms.
type progress struct {
	w    io.Writer
	now  func() time.Time
	last time.Time
}

const barWidth = 30

func (p *progress) show(done, total int, start time.Time) {
	now := p.now()
	if done < total && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	fill := barWidth * done / max(total, 1)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d lines %3d%%  %s/s ", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill),
		done, total, 100*done/max(total, 1), rate(done, now.Sub(start)))
}

func (p *progress) clear() {
	fmt.Fprint(p.w, "\r\033[K")
}

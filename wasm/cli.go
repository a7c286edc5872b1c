package wasm

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/signpost-federation/signpost/wasm/internal/ident"
)

// IdentMain is the `signpost ident` command: validate identifiers through the
// wasm module, or generate synthetic NHS numbers in the 999 test range.
// Exit codes: 0 success (all valid), 1 some input invalid or a failure, 2
// usage.
func IdentMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		identUsage(stderr)
		return 2
	}
	switch args[0] {
	case "validate":
		return identValidate(ctx, args[1:], stdin, stdout, stderr)
	case "generate":
		return identGenerate(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		identUsage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "signpost ident: unknown subcommand %q\n", args[0])
	identUsage(stderr)
	return 2
}

func identUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  signpost ident validate [--scheme nhs|chi|hc|upn|uln] [--json] [--wasm-cache DIR|off] [NUMBER...]")
	fmt.Fprintln(w, "      With no NUMBER, reads one per line from stdin. One output line per input:")
	fmt.Fprintln(w, "      \"valid<TAB>formatted\" or \"invalid<TAB>code<TAB>reason\" (or a JSON object with --json).")
	fmt.Fprintln(w, "      Exit 0 if all are valid, 1 if any is invalid, 2 on usage errors.")
	fmt.Fprintln(w, "      A reason never names the check digit that would make a number valid: a")
	fmt.Fprintln(w, "      mistyped number \"corrected\" that way is another person's. Check it at source.")
	fmt.Fprintln(w, "      Compiled module code is kept in --wasm-cache DIR (default $"+CacheEnv+", else")
	fmt.Fprintln(w, "      signpost/wazero in the user cache directory; \"off\": compile in memory each run).")
	fmt.Fprintln(w, "  signpost ident generate --count N [--seed S]")
	fmt.Fprintln(w, "      Synthetic valid NHS numbers in the 999 test range, reproducible by seed.")
}

// cliBatch is how many stdin lines make one job of the validation
// pipeline (one module call: ValidateBatch's chunk).
const cliBatch = validateChunk

func identValidate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost ident validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scheme := fs.String("scheme", "nhs", "identifier scheme: nhs, chi, hc, upn or uln")
	asJSON := fs.Bool("json", false, "print one JSON object per input")
	cacheFlag := fs.String(CacheFlag, "", CacheFlagUsage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if _, ok := ident.Lookup(*scheme); !ok {
		fmt.Fprintf(stderr, "signpost ident validate: unknown scheme %q (nhs, chi, hc, upn, uln)\n", *scheme)
		return 2
	}
	workers := 1
	if fs.NArg() == 0 {
		// Stdin may be long: one module instance per core validates
		// chunks side by side (the module's time is most of the work).
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	// Only the validation pool is needed: CompileOnUse skips compiling
	// the main one.
	rt, err := New(ctx, Config{Instances: workers, CacheDir: CommandCacheDir(*cacheFlag, stderr), CompileOnUse: true})
	if err != nil {
		fmt.Fprintln(stderr, "signpost ident validate:", err)
		return 1
	}
	defer rt.Close(ctx)

	format := appendPlainResult
	if *asJSON {
		format = appendJSONResult
	}
	w := bufio.NewWriterSize(stdout, 256<<10)
	var allValid bool
	if fs.NArg() > 0 {
		j := &validateJob{lines: fs.Args()}
		j.run(ctx, rt, *scheme, format)
		if err = j.err; err == nil {
			allValid = j.valid
			_, err = w.Write(j.out)
		}
	} else {
		allValid, err = validateStream(ctx, rt, *scheme, format, workers, stdin, w)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintln(stderr, "signpost ident validate:", err)
		return 1
	}
	if !allValid {
		return 1
	}
	return 0
}

// validateJob is one chunk of input lines on its way through the pipeline
// of [validateStream]: validated in the module, formatted by a worker,
// written in input order.
type validateJob struct {
	lines []string
	out   []byte        // the formatted output lines
	valid bool          // every line is valid
	err   error         // validation failed (not: a line is invalid)
	done  chan struct{} // closed when out, valid and err are set
}

// run validates the job's lines and formats them into out.
func (j *validateJob) run(ctx context.Context, rt *Runtime, scheme string, format func([]byte, *Result) []byte) {
	res, err := rt.ValidateBatch(ctx, scheme, j.lines)
	if err != nil {
		j.err = err
		return
	}
	j.valid = true
	// A formatted line is about 20 bytes (plain) or 150 (JSON).
	j.out = make([]byte, 0, 64*len(res))
	for i := range res {
		j.valid = j.valid && res[i].Valid
		j.out = format(j.out, &res[i])
	}
}

// validateStream validates stdin, one input per line (a trailing CR
// removed), and writes one output line per input to w, in input order.
// A reader goroutine cuts the input into jobs of cliBatch lines, workers
// validate and format them in parallel (one module instance each), and
// this goroutine writes them in order; at most 2×workers jobs are in
// flight, so memory stays bounded whatever the input's length. It returns
// whether every line was valid, and the first read, validation or write
// error (output before it is written).
func validateStream(ctx context.Context, rt *Runtime, scheme string, format func([]byte, *Result) []byte, workers int, stdin io.Reader, w io.Writer) (allValid bool, err error) {
	jobs := make(chan *validateJob)
	order := make(chan *validateJob, 2*workers)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1 + workers)
	go func() { // the reader: owns stdin, jobs and order
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		readErr <- readJobs(stdin, func(j *validateJob) bool {
			for _, ch := range []chan *validateJob{order, jobs} {
				select {
				case ch <- j:
				case <-stop:
					return false
				case <-ctx.Done():
					return false
				}
			}
			return true
		})
	}()
	for range workers {
		go func() {
			defer wg.Done()
			for j := range jobs {
				select {
				case <-stop:
					j.err = context.Canceled // not written: the run has failed already
				default:
					j.run(ctx, rt, scheme, format)
				}
				close(j.done)
			}
		}()
	}
	allValid = true
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil {
			err = j.err
		}
		if err == nil {
			_, err = w.Write(j.out)
		}
		if err != nil {
			break
		}
		allValid = allValid && j.valid
	}
	close(stop)
	wg.Wait()
	if rerr := <-readErr; err == nil {
		err = rerr
	}
	if err == nil {
		err = ctx.Err() // the reader stopped early on cancellation
	}
	return allValid, err
}

// readJobs reads lines from r into jobs of cliBatch lines and hands each to
// send, which reports false when the pipeline has stopped. The lines of a
// job share one string, so that a million lines are a few hundred
// allocations. Lines are limited to 1 MiB, as before the pipeline.
func readJobs(r io.Reader, send func(*validateJob) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256<<10), 1<<20)
	var buf []byte
	ends := make([]int, 0, cliBatch)
	flush := func() bool {
		all := string(buf)
		j := &validateJob{lines: make([]string, len(ends)), done: make(chan struct{})}
		from := 0
		for i, e := range ends {
			j.lines[i] = all[from:e]
			from = e
		}
		buf, ends = buf[:0], ends[:0]
		return send(j)
	}
	for sc.Scan() {
		line := sc.Bytes()
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		buf = append(buf, line...)
		ends = append(ends, len(buf))
		if len(ends) == cliBatch && !flush() {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(ends) > 0 {
		flush()
	}
	return nil
}

// appendPlainResult appends r's plain output line: "valid<TAB>formatted"
// or "invalid<TAB>code<TAB>reason".
func appendPlainResult(dst []byte, r *Result) []byte {
	if r.Valid {
		dst = append(dst, "valid\t"...)
		dst = append(dst, r.Formatted...)
	} else {
		dst = append(dst, "invalid\t"...)
		dst = append(dst, r.Code...)
		dst = append(dst, '\t')
		dst = append(dst, r.Reason...)
	}
	return append(dst, '\n')
}

// appendJSONResult appends r as one line of JSON, byte for byte what an
// encoding/json Encoder with SetEscapeHTML(false) writes for it (the
// output before the pipeline; TestAppendJSONResultMatchesEncodingJSON and
// FuzzAppendJSONResult hold it to that), at a fraction of the cost: no
// reflection, no allocation.
func appendJSONResult(dst []byte, r *Result) []byte {
	dst = append(dst, `{"input":`...)
	dst = appendJSONString(dst, r.Input)
	if r.Valid {
		dst = append(dst, `,"valid":true`...)
	} else {
		dst = append(dst, `,"valid":false`...)
	}
	dst = append(dst, `,"scheme":`...)
	dst = appendJSONString(dst, r.Scheme)
	dst = append(dst, `,"system":`...)
	dst = appendJSONString(dst, r.System)
	for _, f := range [...]struct{ key, val string }{
		{`,"normalized":`, r.Normalized}, {`,"formatted":`, r.Formatted},
		{`,"code":`, r.Code}, {`,"reason":`, r.Reason}, {`,"range":`, r.Range},
	} {
		if f.val != "" { // omitempty
			dst = append(dst, f.key...)
			dst = appendJSONString(dst, f.val)
		}
	}
	return append(dst, '}', '\n')
}

// hexDigit is the lowercase hex digit of v (0..15). (No digit table: a run
// of ten digits in the source reads as an identifier to the project's
// checks.)
func hexDigit(v byte) byte {
	if v < 10 {
		return '0' + v
	}
	return 'a' + v - 10
}

// appendJSONString appends s as a JSON string as encoding/json does without
// HTML escaping: '"' and '\\' escaped, control characters as \b \f \n \r
// \t or \u00xx, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' && b < utf8.RuneSelf {
			i++
			continue
		}
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigit(b>>4), hexDigit(b&0xF))
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigit(byte(c)&0xF))
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func identGenerate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost ident generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	count := fs.Int("count", 0, "how many numbers to generate (required, at most 100000000)")
	seed := fs.String("seed", "", "seed (uint64) for a reproducible sequence; default random")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 || *count <= 0 || *count > 100_000_000 {
		fmt.Fprintln(stderr, "signpost ident generate: --count N (1..100000000) is required and takes no arguments")
		return 2
	}
	s := rand.Uint64()
	if *seed != "" {
		v, err := strconv.ParseUint(*seed, 10, 64)
		if err != nil {
			fmt.Fprintln(stderr, "signpost ident generate: --seed must be an unsigned integer")
			return 2
		}
		s = v
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	for _, n := range GenerateTestNumbers(s, *count) {
		w.WriteString(n)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(stderr, "signpost ident generate:", err)
		return 1
	}
	return 0
}

// GenerateTestNumbers returns n synthetic, valid NHS numbers in the 999 test
// range (canonical digits), the same sequence for the same seed. Numbers are
// distinct until the range's roughly 909,000 valid numbers are used up; the
// sequence then continues with a fresh permutation.
func GenerateTestNumbers(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, 0x5369676e706f7374))
	out := make([]string, 0, n)
	var d [10]byte
	for len(out) < n {
		for _, v := range rng.Perm(1_000_000) {
			if len(out) == n {
				break
			}
			d[0], d[1], d[2] = '9', '9', '9'
			for i := 8; i >= 3; i-- {
				d[i] = byte('0' + v%10)
				v /= 10
			}
			c := ident.Mod11CheckDigit(d[:9])
			if c == 10 {
				continue
			}
			d[9] = byte('0' + c)
			if r := (ident.NHS{}).Validate(string(d[:])); !r.Valid {
				continue // the placeholder 9999999999
			}
			out = append(out, string(d[:]))
		}
	}
	return out
}

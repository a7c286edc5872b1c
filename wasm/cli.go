package wasm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"

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
	fmt.Fprintln(w, "  signpost ident validate [--scheme nhs|chi|hc|upn|uln] [--json] [NUMBER...]")
	fmt.Fprintln(w, "      With no NUMBER, reads one per line from stdin. One output line per input:")
	fmt.Fprintln(w, "      \"valid<TAB>formatted\" or \"invalid<TAB>code<TAB>reason\" (or a JSON object with --json).")
	fmt.Fprintln(w, "      Exit 0 if all are valid, 1 if any is invalid, 2 on usage errors.")
	fmt.Fprintln(w, "      A reason never names the check digit that would make a number valid: a")
	fmt.Fprintln(w, "      mistyped number \"corrected\" that way is another person's. Check it at source.")
	fmt.Fprintln(w, "  signpost ident generate --count N [--seed S]")
	fmt.Fprintln(w, "      Synthetic valid NHS numbers in the 999 test range, reproducible by seed.")
}

// cliBatch is how many stdin lines go to the module per call.
const cliBatch = 4096

func identValidate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost ident validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scheme := fs.String("scheme", "nhs", "identifier scheme: nhs, chi, hc, upn or uln")
	asJSON := fs.Bool("json", false, "print one JSON object per input")
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
	rt, err := New(ctx, Config{Instances: 1})
	if err != nil {
		fmt.Fprintln(stderr, "signpost ident validate:", err)
		return 1
	}
	defer rt.Close(ctx)

	w := bufio.NewWriterSize(stdout, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	allValid := true
	emit := func(batch []string) error {
		res, err := rt.ValidateBatch(ctx, *scheme, batch)
		if err != nil {
			return err
		}
		for _, r := range res {
			allValid = allValid && r.Valid
			switch {
			case *asJSON:
				if err := enc.Encode(r); err != nil {
					return err
				}
			case r.Valid:
				fmt.Fprintf(w, "valid\t%s\n", r.Formatted)
			default:
				fmt.Fprintf(w, "invalid\t%s\t%s\n", r.Code, r.Reason)
			}
		}
		return nil
	}

	if fs.NArg() > 0 {
		err = emit(fs.Args())
	} else {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		batch := make([]string, 0, cliBatch)
		for sc.Scan() {
			line := sc.Text()
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			batch = append(batch, line)
			if len(batch) == cliBatch {
				if err = emit(batch); err != nil {
					break
				}
				batch = batch[:0]
			}
		}
		if err == nil {
			err = sc.Err()
		}
		if err == nil && len(batch) > 0 {
			err = emit(batch)
		}
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

package wasm

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// randomIdentInput returns a random input of 0 to 20 runes (now and then
// up to 80): mostly ASCII digits, with separators of every kind the
// validators know or refuse, letters, non-ASCII digits and other unicode,
// and NHS-shaped numbers with and without a valid check digit, so that
// every branch of every scheme is reached.
func randomIdentInput(rng *rand.Rand, buf []rune) string {
	n := rng.IntN(21)
	if rng.IntN(100) == 0 {
		n = rng.IntN(81)
	}
	if x := rng.IntN(10); x < 4 {
		// NHS-shaped: 10 digits, check digit valid about 9 times in 11
		// (the 999 range and others), formatted three ways.
		return nhsShaped(rng)
	}
	extra := []rune{' ', '-', '\t', '.', '/', '_', '\u00a0', '\u2013', '٣', '７', '߁', 'x', 'A', 'z', 'é', 'ß', '\u200b', '\ufffd', '😀', '\n'}
	buf = buf[:0]
	for range n {
		switch x := rng.IntN(100); {
		case x < 80:
			buf = append(buf, rune('0'+rng.IntN(10)))
		case x < 90:
			buf = append(buf, rune('A'+rng.IntN(26)))
		default:
			buf = append(buf, extra[rng.IntN(len(extra))])
		}
	}
	if n > 0 && rng.IntN(40) == 0 { // a placeholder now and then
		for i := range buf {
			buf[i] = buf[0]
		}
	}
	return string(buf)
}

// nhsShaped returns 10 digits with a computed check digit (sometimes
// changed), as "9990000018", "999 000 0018" or "999-000-0018".
func nhsShaped(rng *rand.Rand) string {
	var d [10]byte
	total := 0
	for i := range 9 {
		d[i] = byte(rng.IntN(10))
		total += int(d[i]) * (10 - i)
	}
	check := (11 - total%11) % 11
	d[9] = byte(check % 10)
	if rng.IntN(5) == 0 {
		d[9] = byte(rng.IntN(10))
	}
	var b strings.Builder
	sep := [...]string{"", " ", "-", " - "}[rng.IntN(4)]
	for i, x := range d {
		if i == 3 || i == 6 {
			b.WriteString(sep)
		}
		b.WriteByte('0' + x)
	}
	return b.String()
}

// TestNativeValidationIsTheModules holds the node's native validation to
// the module's on every run: 10^6 random inputs (NHS), and 10^5 for each
// other scheme, give identical Results (validity, code, reason,
// normalised and formatted forms, range, system) natively and in the
// module under wazero. The work is split in batches over the cores.
func TestNativeValidationIsTheModules(t *testing.T) {
	total := 1_000_000
	others := 100_000
	if testing.Short() || testutil.RaceEnabled {
		total, others = 50_000, 10_000
	}
	seed := testutil.Seed(t)
	r := newTestRuntime(t, Config{Instances: runtime.GOMAXPROCS(0)})
	nc := NewNativeClient(nil)
	schemes, err := r.Schemes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		scheme string
		n      int
		stream uint64
	}
	var jobs []job
	for i, s := range schemes {
		n := others
		if s.Name == "nhs" {
			n = total
		}
		jobs = append(jobs, job{s.Name, n, uint64(i)})
	}
	const batch = 4096
	work := make(chan [2]int) // job index, batch start
	go func() {
		defer close(work)
		for j, jb := range jobs {
			for start := 0; start < jb.n; start += batch {
				work <- [2]int{j, start}
			}
		}
	}()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure string
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]rune, 0, 80)
			inputs := make([]string, 0, batch)
			for w := range work {
				jb := jobs[w[0]]
				// Each batch has its own stream, so a failure replays with
				// the seed whatever the scheduling.
				rng := rand.New(rand.NewPCG(seed, jb.stream<<32|uint64(w[1])))
				inputs = inputs[:0]
				for range min(batch, jb.n-w[1]) {
					inputs = append(inputs, randomIdentInput(rng, buf))
				}
				mod, err1 := r.ValidateBatch(context.Background(), jb.scheme, inputs)
				nat, err2 := nc.ValidateBatch(context.Background(), jb.scheme, inputs)
				msg := ""
				switch {
				case err1 != nil || err2 != nil:
					msg = "module error " + errString(err1) + ", native error " + errString(err2)
				case len(mod) != len(nat):
					msg = "result counts differ"
				default:
					for i := range mod {
						if mod[i] != nat[i] {
							// Reasons and codes never contain the input's
							// digits; the input is random test data.
							msg = "input " + strconvQuote(inputs[i]) + " (" + jb.scheme + "): module " + resultString(mod[i]) + ", native " + resultString(nat[i])
							break
						}
					}
				}
				if msg != "" {
					mu.Lock()
					if failure == "" {
						failure = msg
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failure != "" {
		t.Fatal(failure)
	}
	t.Logf("%d NHS inputs and %d for each of %d other schemes agree", total, others, len(schemes)-1)
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}

func resultString(r Result) string {
	return strings.Join([]string{"valid=" + map[bool]string{true: "yes", false: "no"}[r.Valid], r.Scheme, r.System, r.Normalized, r.Formatted, r.Code, r.Reason, r.Range}, "|")
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// TestNativeValidationErrors: the native client's errors are the module's.
func TestNativeValidationErrors(t *testing.T) {
	r := newTestRuntime(t, Config{Instances: 1})
	nc := NewNativeClient(nil)
	ctx := context.Background()
	huge := strings.Repeat("9", 3<<20) // three exceed a call's input bound
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	cases := []struct {
		name   string
		ctx    context.Context
		scheme string
		inputs []string
		want   error
	}{
		{"unknown scheme", ctx, "passport", []string{"9990000018"}, ErrUnknownScheme},
		{"unknown scheme, empty batch", ctx, "passport", nil, ErrUnknownScheme},
		{"too large", ctx, "nhs", []string{huge, huge, huge}, ErrInputTooLarge},
		{"cancelled", cancelled, "nhs", []string{"9990000018"}, context.Canceled},
		{"empty batch", ctx, "nhs", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mod, err1 := r.ValidateBatch(c.ctx, c.scheme, c.inputs)
			nat, err2 := nc.ValidateBatch(c.ctx, c.scheme, c.inputs)
			if !errors.Is(err1, c.want) || !errors.Is(err2, c.want) || (c.want == nil && (err1 != nil || err2 != nil)) {
				t.Fatalf("module %v, native %v, want %v", err1, err2, c.want)
			}
			if len(mod) != len(nat) {
				t.Fatalf("module %d results, native %d", len(mod), len(nat))
			}
		})
	}
	res, err := nc.Validate(ctx, "nhs", "999 000 0018")
	if err != nil || !res.Valid || res.Normalized != "9990000018" || res.Input != "999 000 0018" {
		t.Fatalf("Validate: %+v %v", res, err)
	}
}

package edge

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// A resume file records the input lines a run has finished (answered and
// written to stdout: found, none or invalid; a failed line is not finished)
// so that a run interrupted and started again with the same input and the
// same file skips them. It is text:
//
//	signpost-locate-resume v1 <salt: 32 hex digits>
//	<line number> <tag: 4 hex digits>
//	...
//
// The tag is the first 2 bytes of HMAC-SHA256(salt, line): enough to notice
// that line N is not the line that was finished (a different input, or an
// edited one: a mismatched line is done again), and far too short to tell
// which number it was — each tag fits about 14,000 of the roughly 10⁹ valid
// NHS numbers, whatever the attacker's means, and the random salt spoils
// tables made in advance. The number itself is never written.

const resumeMagic = "signpost-locate-resume v1"

// tagLen is the tag's length in bytes.
const tagLen = 2

// ErrResumeFile is returned for a resume file that is not one.
var ErrResumeFile = errors.New("edge: not a signpost locate resume file")

// resume is an open resume file.
type resume struct {
	f    *os.File
	salt []byte
	done map[int]string // line number → tag (hex)
}

// openResume opens path, reading what it records, or creates it with a
// fresh salt.
func openResume(path string) (*resume, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("edge: resume file: %w", err)
	}
	r, err := readResume(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("edge: resume file %s: %w", path, err)
	}
	if r.salt == nil {
		r.salt = make([]byte, 16)
		if _, err := rand.Read(r.salt); err != nil {
			f.Close()
			return nil, fmt.Errorf("edge: resume file salt: %w", err)
		}
		if _, err := fmt.Fprintf(f, "%s %s\n", resumeMagic, hex.EncodeToString(r.salt)); err != nil {
			f.Close()
			return nil, fmt.Errorf("edge: resume file %s: %w", path, err)
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("edge: resume file %s: %w", path, err)
	}
	r.f = f
	return r, nil
}

// readResume parses a resume file: empty (a new one: salt nil), or the
// header and records. A last line without its newline (the run was killed
// while writing it) is ignored; anything else malformed is
// [ErrResumeFile].
func readResume(r io.Reader) (*resume, error) {
	out := &resume{done: make(map[int]string)}
	br := bufio.NewReader(r)
	first := true
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			if first && line != "" {
				return nil, ErrResumeFile
			}
			return out, nil // a torn last record is not a record
		}
		if err != nil {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		if first {
			first = false
			salt, ok := strings.CutPrefix(line, resumeMagic+" ")
			b, err := hex.DecodeString(salt)
			if !ok || err != nil || len(b) != 16 {
				return nil, ErrResumeFile
			}
			out.salt = b
			continue
		}
		num, tag, ok := strings.Cut(line, " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || len(tag) != 2*tagLen || !isHex(tag) {
			return nil, fmt.Errorf("%w: malformed record", ErrResumeFile)
		}
		out.done[n] = tag
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// tag returns the tag of an input line.
func (r *resume) tag(line string) string {
	m := hmac.New(sha256.New, r.salt)
	m.Write([]byte(line))
	return hex.EncodeToString(m.Sum(nil)[:tagLen])
}

// finished reports whether line number n (1-based) with this text was
// finished by an earlier run.
func (r *resume) finished(n int, line string) bool {
	t, ok := r.done[n]
	return ok && t == r.tag(line)
}

// record appends that lines numbered ns, with texts lines, are finished.
func (r *resume) record(ns []int, lines []string) error {
	var b strings.Builder
	for i, n := range ns {
		fmt.Fprintf(&b, "%d %s\n", n, r.tag(lines[i]))
	}
	if _, err := r.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("edge: resume file: %w", err)
	}
	return nil
}

func (r *resume) close() error { return r.f.Close() }

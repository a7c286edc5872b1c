// Package csvrec reads the records of an import file (CSV): one home for
// the rules the node's import endpoint and the `signpost node import`
// client share — which first record is a header, which records are blank,
// how a malformed record is reported (its line and a reason that never
// quotes its content) and how reading resumes after it.
package csvrec

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Scan reads the records of an import file and calls fn with each one
// and the line it starts on, or with the *csv.ParseError of a malformed one
// (rec nil). A header (a first record whose first cell is "localId", any
// case) and records of one blank cell are skipped.
//
// A malformed record costs that record only. encoding/csv (LazyQuotes off)
// resumes at the next line after an error found on the record's first line
// (a bare quote, a stray quote after a quoted field). A quote that opens a
// field and is never closed properly makes it read on over the following
// lines, to the end of the file if need be; then Scan reads again from
// the line after the one the record started on, so that the lines it
// swallowed are read as the rows they were meant to be. The error's
// StartLine and Line, and every line passed to fn, are lines of r.
//
// An error from fn stops the scan and is returned; an I/O error is wrapped.
func Scan(r io.Reader, fn func(rec []string, line int, bad *csv.ParseError) error) error {
	src := &replayReader{r: r}
	base := 0 // lines of r before src's first byte
	first := true
	for {
		cr := csv.NewReader(src)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
	records:
		for {
			src.forget(cr.InputOffset())
			rec, err := cr.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				first = false
				bad := *pe
				bad.StartLine += base
				bad.Line += base
				if err := fn(nil, bad.StartLine, &bad); err != nil {
					return err
				}
				if pe.Line > pe.StartLine {
					// Read again from the line after the record's first.
					src = &replayReader{r: io.MultiReader(bytes.NewReader(src.afterFirstLine()), src.r)}
					base = bad.StartLine
					break records
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("node: csv: %w", err)
			}
			line, _ := cr.FieldPos(0)
			line += base
			if first {
				first = false
				if len(rec) > 0 && strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff")), "localId") {
					continue
				}
			}
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			if err := fn(rec, line, nil); err != nil {
				return err
			}
		}
	}
}

// Reason is the reason shown for a malformed record: encoding/csv's
// sentence and where it was found (never the record's content).
func Reason(pe *csv.ParseError) string {
	if pe.Line > pe.StartLine {
		return fmt.Sprintf("malformed CSV: %v (quoted field opened on this line, error on line %d, column %d); the lines after this one were read as rows", pe.Err, pe.Line, pe.Column)
	}
	return fmt.Sprintf("malformed CSV: %v (column %d)", pe.Err, pe.Column)
}

// replayReader keeps the bytes it has passed on from offset off onwards, so
// that the scan can read them again after a malformed record.
type replayReader struct {
	r   io.Reader
	buf []byte // bytes passed on, from offset off
	off int64
}

func (p *replayReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.buf = append(p.buf, b[:n]...)
	return n, err
}

// forget drops the bytes before offset o (o never decreases).
func (p *replayReader) forget(o int64) {
	p.buf = p.buf[o-p.off:]
	p.off = o
}

// afterFirstLine returns the kept bytes after the first non-blank line (the
// first line of the record read from the kept offset; encoding/csv skips
// blank lines before a record).
func (p *replayReader) afterFirstLine() []byte {
	b := p.buf
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		blank := i == 0 || (i == 1 && b[0] == '\r')
		b = b[i+1:]
		if !blank {
			return b
		}
	}
}

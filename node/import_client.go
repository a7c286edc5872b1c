package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/signpost-federation/signpost/node/internal/csvrec"
	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// The client side of POST /v1/records/import, used by `signpost node
// import`: it lives beside the endpoint so that both read CSV through
// node/internal/csvrec and share ImportReport and MaxImportRows.

// importChunk is the number of CSV rows sent per request (at most
// MaxImportRows; the node takes each request whole or not at all).
const importChunk = 2000

// countingReader counts bytes read, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ImportFile sends a CSV to a node's /v1/records/import in chunks of rows,
// mapping each chunk's reported lines back to lines of the file. A bad row
// loses no good one: a malformed row is reported here with its line and
// reason and the next row is read (see csvrec.Scan); rows the node refuses come
// back in its report. The node takes each chunk whole or not at all; when
// one is refused (the issuer is unreachable, say), ImportFile stops and its
// error names the first line not imported, while the report covers every
// line before it. progress is called after each chunk with bytes read.
func ImportFile(ctx context.Context, c *http.Client, baseURL, token string, r io.Reader, size int64, progress func(done, total int64)) (ImportReport, error) {
	var total ImportReport
	addErr := func(e RowError) {
		if len(total.Errors) < MaxReportedErrors {
			total.Errors = append(total.Errors, e)
		}
	}
	cr := &countingReader{r: r}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	// fileLine maps the line a row starts on in the chunk to its line in
	// the file; a re-encoded field may hold newlines, so rows and chunk
	// lines need not match one to one.
	fileLine := make(map[int]int)
	chunkLine, rows := 1, 0
	send := func() error {
		if rows == 0 {
			return nil
		}
		w.Flush()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/v1/records/import", bytes.NewReader(buf.Bytes()))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "text/csv")
		res, err := c.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var rep ImportReport
		// 202: committed, some publications queued (counted in Queued).
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusAccepted {
			var e struct {
				Error struct{ Code, Message string }
			}
			json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&e)
			return fmt.Errorf("node answered %d %s: %s", res.StatusCode, e.Error.Code, e.Error.Message)
		}
		if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&rep); err != nil {
			return err
		}
		total.Imported += rep.Imported
		total.Published += rep.Published
		total.Queued += rep.Queued
		total.Unchanged += rep.Unchanged
		total.Withheld += rep.Withheld
		total.Failed += rep.Failed
		for _, e := range rep.Errors {
			if l, ok := fileLine[e.Line]; ok {
				e.Line = l
			}
			addErr(e)
		}
		for _, e := range rep.WithheldRows {
			if l, ok := fileLine[e.Line]; ok {
				e.Line = l
			}
			if len(total.WithheldRows) < MaxReportedErrors {
				total.WithheldRows = append(total.WithheldRows, e)
			}
		}
		buf.Reset()
		clear(fileLine)
		chunkLine, rows = 1, 0
		if progress != nil {
			progress(cr.n, size)
		}
		return nil
	}
	err := csvrec.Scan(cr, func(rec []string, line int, pe *csv.ParseError) error {
		if pe != nil {
			total.Failed++
			addErr(RowError{Line: line, Code: httpx.CodeMalformedCSV, Message: csvrec.Reason(pe)})
			return nil
		}
		if err := w.Write(rec); err != nil {
			return err
		}
		fileLine[chunkLine] = line
		chunkLine++
		for _, f := range rec {
			chunkLine += strings.Count(f, "\n")
		}
		rows++
		if rows >= importChunk {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	if err != nil && rows > 0 {
		// The node writes nothing of a refused chunk.
		err = fmt.Errorf("rows from line %d on were not imported: %w", fileLine[1], err)
	}
	slices.SortStableFunc(total.Errors, func(a, b RowError) int { return cmp.Compare(a.Line, b.Line) })
	if err != nil {
		return total, err
	}
	if progress != nil {
		progress(size, size)
	}
	return total, nil
}

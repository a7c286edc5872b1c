package node

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/csvrec"
	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// CSVRow is one data row of an import file: localId,nhsNumber,category,retainUntil
// (category and retainUntil may be empty). Line is the 1-based line number.
type CSVRow struct {
	Line        int
	LocalID     string
	NHSNumber   string
	Category    string
	RetainUntil string
}

// RowError is one rejected row of an import. Message never contains the NHS
// number.
type RowError struct {
	Line    int        `json:"line"`
	LocalID string     `json:"localId,omitempty"`
	Code    httpx.Code `json:"code"`
	Message string     `json:"message"`
}

// ImportReport is the answer to an import. Of the records Imported,
// Published were published before the answer and Queued wait in the
// node's outbox (the issuer could not be reached; the node publishes them
// when it can, and the answer is 202). Withheld rows are stored and not
// published, because the person's objection stands (objection.go): each
// is listed in WithheldRows with the code "objected" (up to
// MaxReportedErrors), and none fails another row.
type ImportReport struct {
	Imported     int        `json:"imported"`
	Published    int        `json:"published"`
	Queued       int        `json:"queued"`
	Unchanged    int        `json:"unchanged"`
	Withheld     int        `json:"withheld"`
	Failed       int        `json:"failed"`
	Errors       []RowError `json:"errors"`
	WithheldRows []RowError `json:"withheldRows,omitempty"`
}

// withheldMessage is an import's reason for a row stored, not published.
const withheldMessage = "stored, not published: the person has objected at this agency"

// MaxReportedErrors bounds the per-row errors listed in one report (the
// count in Failed is always complete).
const MaxReportedErrors = 1000

// ReadCSV streams rows from r to fn in order. A header row (first cell
// "localId", any case) is skipped. A malformed row (a quoting error, or the
// wrong number of cells) is reported through fn's bad argument with its line
// and reason, and reading goes on with the next row: a bad row never loses a
// good one (see csvrec.Scan). Only an I/O error, or an error from fn, stops it.
func ReadCSV(r io.Reader, fn func(row CSVRow, bad *RowError) error) error {
	return csvrec.Scan(r, func(rec []string, line int, pe *csv.ParseError) error {
		if pe != nil {
			return fn(CSVRow{Line: line}, &RowError{Line: line, Code: httpx.CodeMalformedCSV, Message: csvrec.Reason(pe)})
		}
		if len(rec) < 2 || len(rec) > 4 {
			return fn(CSVRow{Line: line}, &RowError{Line: line, Code: httpx.CodeMalformedCSV, Message: fmt.Sprintf("expected 2 to 4 columns, got %d", len(rec))})
		}
		row := CSVRow{Line: line, LocalID: strings.TrimSpace(rec[0]), NHSNumber: rec[1]}
		if len(rec) > 2 {
			row.Category = strings.TrimSpace(rec[2])
		}
		if len(rec) > 3 {
			row.RetainUntil = strings.TrimSpace(rec[3])
		}
		return fn(row, nil)
	})
}

// MaxImportRows bounds the data rows of one import request (bad rows
// included): a request is held in memory, validated and tokenised in full
// before anything is written. `signpost node import` sends 2000 at a time.
const MaxImportRows = 10000

// Errors of an import that was refused before anything was written.
var (
	errImportTooManyRows = errors.New("node: import has too many rows")
	errImportBody        = errors.New("node: import body could not be read to the end")
)

// Import reads a CSV and stores and publishes every good row; every bad row
// is reported with its line and loses no good one. progress, if non-nil, is
// called after each tokenised batch with the rows handled so far.
//
// An import is all or nothing for everything but the rows' own content: the
// whole CSV is read and validated, and only then are the records committed,
// with their outbox items, in one transaction. So an error — the body
// cannot be read to the end, the store fails — leaves nothing written, and
// the report returned with it is empty. The records are then published
// (MaxBatch rows per call to the issuer); those the issuer could not be
// reached for stay queued in the outbox and are counted in Queued: the
// node publishes them when it can (outbox.go).
func (n *Node) Import(ctx context.Context, r io.Reader, actor string, progress func(done int)) (ImportReport, error) {
	return n.importCSV(ctx, r, actor, 0, progress)
}

// importCSV is Import with at most maxRows data rows (0: no limit).
func (n *Node) importCSV(ctx context.Context, r io.Reader, actor string, maxRows int, progress func(done int)) (ImportReport, error) {
	var rep ImportReport
	addErr := func(e RowError) {
		rep.Failed++
		if len(rep.Errors) < MaxReportedErrors {
			rep.Errors = append(rep.Errors, e)
		}
	}
	fail := func(outcome string, err error) (ImportReport, error) {
		n.audit(ctx, AuditEvent{Action: "import", Actor: actor, Outcome: outcome})
		return ImportReport{}, fmt.Errorf("node: import refused, nothing written: %w", err)
	}

	// Read and validate every row.
	var recs []records.Record
	var lines []int
	seen := make(map[string]int)
	rows := 0
	body := &bodyReader{r: r}
	err := ReadCSV(body, func(row CSVRow, bad *RowError) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rows++; maxRows > 0 && rows > maxRows {
			return fmt.Errorf("%w: more than %d", errImportTooManyRows, maxRows)
		}
		if bad != nil {
			addErr(*bad)
			return nil
		}
		rec, aerr := n.newRecord(ctx, createRecordRequest{LocalID: row.LocalID, NHSNumber: row.NHSNumber, Category: row.Category, RetainUntil: row.RetainUntil})
		if aerr != nil {
			addErr(RowError{Line: row.Line, LocalID: row.LocalID, Code: aerr.Code, Message: aerr.Message})
			return nil
		}
		if prev, dup := seen[rec.LocalID]; dup {
			addErr(RowError{Line: row.Line, LocalID: row.LocalID, Code: httpx.CodeDuplicate, Message: fmt.Sprintf("localId repeats line %d", prev)})
			return nil
		}
		seen[rec.LocalID] = row.Line
		recs = append(recs, rec)
		lines = append(lines, row.Line)
		return nil
	})
	if err != nil {
		if body.err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errImportBody, err)
		}
		return fail("invalid", err)
	}

	// Commit the records and their outbox items in one transaction, then
	// publish what was created, MaxBatch rows at a time.
	var res []records.RowResult
	if len(recs) > 0 {
		ids := make([]string, len(recs))
		for i, rec := range recs {
			ids[i] = rec.LocalID
		}
		release, err := n.pub.claim(ctx, ids)
		if err != nil {
			return fail("error", err)
		}
		defer release()
		if res, err = n.records.PutBatch(recs, records.Note{At: n.opt.Now()}); err != nil {
			return fail("error", err)
		}
	}
	var seqs []uint64
	for i, rr := range res {
		switch {
		case rr.Err == nil && rr.Record.Objected:
			rep.Withheld++
			if len(rep.WithheldRows) < MaxReportedErrors {
				rep.WithheldRows = append(rep.WithheldRows, RowError{Line: lines[i], LocalID: recs[i].LocalID, Code: httpx.CodeObjected, Message: withheldMessage})
			}
		case rr.Err == nil && rr.Created:
			rep.Imported++
			seqs = append(seqs, rr.Seq)
		case rr.Err == nil:
			rep.Unchanged++
		case errors.Is(rr.Err, records.ErrExists):
			addErr(RowError{Line: lines[i], LocalID: recs[i].LocalID, Code: httpx.CodeExists, Message: "a different record with this localId exists"})
		default:
			addErr(RowError{Line: lines[i], LocalID: recs[i].LocalID, Code: httpx.CodeInvalidRecord, Message: strings.TrimPrefix(rr.Err.Error(), "records: invalid record: ")})
		}
	}
	slices.SortStableFunc(rep.Errors, func(a, b RowError) int { return cmp.Compare(a.Line, b.Line) })
	published := n.flushAll(ctx, seqs, func(done int) {
		if progress != nil {
			progress(rep.Failed + rep.Unchanged + rep.Withheld + done)
		}
	})
	rep.Queued = len(seqs) - published
	rep.Published = rep.Imported - rep.Queued
	if progress != nil {
		progress(rows)
	}
	outcome := "ok"
	if rep.Queued > 0 {
		outcome = "queued"
	}
	n.audit(ctx, AuditEvent{Action: "import", Actor: actor, Count: rep.Imported, Outcome: outcome})
	if rep.Withheld > 0 {
		n.audit(ctx, AuditEvent{Action: string(audit.ActionRecordWithheld), Actor: actor, Count: rep.Withheld, Outcome: "ok"})
	}
	return rep, nil
}

// bodyReader remembers the first error reading the body (other than EOF),
// to tell a body cut short from other failures.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.err == nil {
		b.err = err
	}
	return n, err
}

// handleImport answers 200 with the report once every row has been handled
// (each good row committed, each bad row reported, every record
// published), 202 with the same report when some records are committed but
// their publication is queued (the issuer cannot be reached; "queued"
// counts them), and an error with nothing written otherwise: 413 for a
// body over max_import_bytes (refused from its Content-Length before it is
// read, when it has one) or over MaxImportRows rows, 400 for a body cut
// short, 500 for a failure of the node.
func (n *Node) handleImport(w http.ResponseWriter, r *http.Request) error {
	limit := n.cfg.MaxImportBytes
	if r.ContentLength > limit {
		return errorf(http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "import exceeds %d bytes; split the file; nothing was imported", limit)
	}
	rep, err := n.importCSV(r.Context(), r.Body, principalFrom(r.Context()).Name, MaxImportRows, nil)
	if err == nil {
		status := http.StatusOK
		if rep.Queued > 0 {
			status = http.StatusAccepted
		}
		writeJSON(w, status, rep)
		return nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "import exceeds %d bytes; split the file; nothing was imported", mbe.Limit)
	case errors.Is(err, errImportTooManyRows):
		return errorf(http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "import has more than %d rows; split the file; nothing was imported", MaxImportRows)
	case errors.Is(err, errImportBody), r.Context().Err() != nil:
		n.log.Warn("import refused", "err", err)
		return errorf(http.StatusBadRequest, httpx.CodeBadRequest, "the request body could not be read to the end; nothing was imported")
	default:
		n.log.Error("import failed", "err", err)
		return errorf(http.StatusInternalServerError, httpx.CodeInternal, "the import failed; nothing was imported")
	}
}

// flushAll publishes the outbox items seqs, MaxBatch at a time, with one
// batch per core in flight: a batch's steps (blinding, the issuers'
// answers, combining, one replica transaction, marking it published) are
// mostly one after the other, so one batch at a time left a core idle
// about a quarter of an import. After a batch fails (the issuers cannot be
// reached) no other starts: the rest waits in the outbox, as after any
// write. It returns how many items were published; progress gets the
// running count.
func (n *Node) flushAll(ctx context.Context, seqs []uint64, progress func(done int)) int {
	var (
		mu     sync.Mutex
		done   int
		failed bool
		next   int
		wg     sync.WaitGroup
	)
	take := func() (lo, hi int, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || next >= len(seqs) {
			return 0, 0, false
		}
		lo, hi = next, min(next+n.cfg.MaxBatch, len(seqs))
		next = hi
		return lo, hi, true
	}
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo, hi, ok := take()
				if !ok {
					return
				}
				_, published := n.flush(ctx, seqs[lo:hi])
				mu.Lock()
				if published {
					done += hi - lo
					progress(done)
				} else {
					failed = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return done
}

package node

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

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
	Line    int    `json:"line"`
	LocalID string `json:"localId,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ImportReport is the answer to an import.
type ImportReport struct {
	Imported  int        `json:"imported"`
	Unchanged int        `json:"unchanged"`
	Failed    int        `json:"failed"`
	Errors    []RowError `json:"errors"`
}

// MaxReportedErrors bounds the per-row errors listed in one report (the
// count in Failed is always complete).
const MaxReportedErrors = 1000

// ReadCSV streams rows from r to fn in order. A header row (first cell
// "localId", any case) is skipped. A malformed row (a quoting error, or the
// wrong number of cells) is reported through fn's bad argument with its line
// and reason, and reading goes on with the next row: a bad row never loses a
// good one (see scanCSV). Only an I/O error, or an error from fn, stops it.
func ReadCSV(r io.Reader, fn func(row CSVRow, bad *RowError) error) error {
	return scanCSV(r, func(rec []string, line int, pe *csv.ParseError) error {
		if pe != nil {
			return fn(CSVRow{Line: line}, &RowError{Line: line, Code: "malformed_csv", Message: csvReason(pe)})
		}
		if len(rec) < 2 || len(rec) > 4 {
			return fn(CSVRow{Line: line}, &RowError{Line: line, Code: "malformed_csv", Message: fmt.Sprintf("expected 2 to 4 columns, got %d", len(rec))})
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

// Import reads a CSV and stores and publishes every good row, in batches;
// every bad row is reported and loses no good one. progress, if non-nil, is
// called after each batch with the rows processed so far.
func (n *Node) Import(ctx context.Context, r io.Reader, actor string, progress func(done int)) (ImportReport, error) {
	var rep ImportReport
	var batch []records.Record
	var lines []int
	done := 0
	addErr := func(e RowError) {
		rep.Failed++
		if len(rep.Errors) < MaxReportedErrors {
			rep.Errors = append(rep.Errors, e)
		}
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch, lines = batch[:0], lines[:0] }()
		nums := make([]string, len(batch))
		for i, r := range batch {
			nums[i] = r.NHSNumber
		}
		keys, err := n.tokenise(ctx, nums)
		if err != nil {
			return err
		}
		res, err := n.records.PutBatch(batch)
		if err != nil {
			return err
		}
		var pub []records.Record
		pubKeys := make(map[string][]Keys)
		for i, rr := range res {
			switch {
			case rr.Err == nil && rr.Created:
				rep.Imported++
				pub = append(pub, rr.Record)
				for p, ks := range keys {
					pubKeys[p] = append(pubKeys[p], ks[i])
				}
			case rr.Err == nil:
				rep.Unchanged++
			case errors.Is(rr.Err, records.ErrExists):
				addErr(RowError{Line: lines[i], LocalID: batch[i].LocalID, Code: "exists", Message: "a different record with this localId exists"})
			case errors.Is(rr.Err, records.ErrObjected):
				addErr(RowError{Line: lines[i], LocalID: batch[i].LocalID, Code: "objected", Message: "the person has objected"})
			default:
				addErr(RowError{Line: lines[i], LocalID: batch[i].LocalID, Code: "invalid_record", Message: strings.TrimPrefix(rr.Err.Error(), "records: invalid record: ")})
			}
		}
		if err := n.publishKeys(ctx, pub, pubKeys); err != nil {
			n.log.Error("publish after import failed", "err", err)
		}
		done += len(res)
		if progress != nil {
			progress(done + rep.Failed)
		}
		return nil
	}
	seen := make(map[string]int)
	err := ReadCSV(r, func(row CSVRow, bad *RowError) error {
		if err := ctx.Err(); err != nil {
			return err
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
			addErr(RowError{Line: row.Line, LocalID: row.LocalID, Code: "duplicate", Message: fmt.Sprintf("localId repeats line %d", prev)})
			return nil
		}
		seen[rec.LocalID] = row.Line
		batch = append(batch, rec)
		lines = append(lines, row.Line)
		if len(batch) >= n.cfg.MaxBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	n.audit(ctx, AuditEvent{Action: "import", Actor: actor, Count: rep.Imported, Outcome: "ok"})
	if err != nil {
		return rep, fmt.Errorf("node: import stopped: %w", err)
	}
	return rep, nil
}

func (n *Node) handleImport(w http.ResponseWriter, r *http.Request) error {
	rep, err := n.Import(r.Context(), r.Body, principalFrom(r.Context()).Name, nil)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, httpx.CodeTooLarge, "import exceeds %d bytes; split the file", mbe.Limit)
		}
		if errors.Is(err, ErrIssuerUnavailable) {
			return err
		}
		n.log.Warn("import stopped", "err", err, "imported", rep.Imported)
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]string{"code": "import_stopped", "message": "the file could not be read to the end; rows before the problem were imported"}, "report": rep})
		return nil
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

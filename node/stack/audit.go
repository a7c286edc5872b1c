package stack

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

// ErrAuditLog means the node's audit log, its public key file or its saved
// head failed verification at start; the node refuses to start rather than
// append signed lines after a bad one. docs/AUDIT.md says how to recover.
var ErrAuditLog = errors.New("node: the audit log fails verification")

// ActionAuditStart is the first event of every new audit log.
const ActionAuditStart audit.Action = "audit-start"

// ActionAuditRepair is the audit event a node appends when it cut a torn
// final line at start; Count is the number of bytes cut.
const ActionAuditRepair audit.Action = "audit-repair"

// openAudit opens the node's audit log, signed with the node's key: it
// writes the public key file beside it on first start (refusing a data
// directory whose log another key signs), verifies every line, its
// signature and the saved head, and reports a torn final line it cut.
func openAudit(dir string, key ed25519.PrivateKey, log *slog.Logger) (*audit.Log, error) {
	path := filepath.Join(dir, audit.FileName)
	recovery := "the node will not start on it; keep the file for investigation and see docs/AUDIT.md, \"Recovery\""
	if err := audit.EnsurePublicKey(filepath.Join(dir, audit.PublicKeyFileName), key.Public().(ed25519.PublicKey)); err != nil {
		return nil, fmt.Errorf("%w: %w; %s", ErrAuditLog, err, recovery)
	}
	l, err := audit.Open(path, audit.Config{Signer: key})
	if err != nil {
		return nil, fmt.Errorf("%w: %w; %s", ErrAuditLog, err, recovery)
	}
	if l.Head().Size == 0 {
		// A new log's first event says so, and whether the node had a
		// history already: a log moved aside after a failed verification
		// (docs/AUDIT.md, "Recovery") leaves that break on record.
		ev := audit.Event{Actor: "node:self", Action: ActionAuditStart, Outcome: audit.OutcomeOK, Detail: "a new audit log"}
		if _, err := os.Stat(filepath.Join(dir, "records.db")); err == nil {
			ev.Detail = "a new audit log for a node that has records: an earlier log was moved aside or lost"
		}
		if _, err := l.Append(ev); err != nil {
			l.Close()
			return nil, fmt.Errorf("%w: %w", ErrAuditLog, err)
		}
	}
	if n := l.CutAtOpen(); n > 0 {
		log.Warn("audit log: cut a torn final line (a write interrupted by a crash, never acknowledged)", "path", path, "bytes", n)
		// The log itself records the repair, so that it is never silent.
		if _, err := l.Append(audit.Event{Actor: "node:self", Action: ActionAuditRepair, Outcome: audit.OutcomeOK,
			Count: int(n), Detail: "cut a torn final line at start"}); err != nil {
			l.Close()
			return nil, fmt.Errorf("%w: %w", ErrAuditLog, err)
		}
	}
	return l, nil
}

// auditHeadLoop saves the audit log's head and offers it to the witnesses
// every interval, until ctx ends. Failures (a member unreachable) are
// retried at the next round.
func (s *Stack) auditHeadLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Node.PublishAuditHead(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("audit head not offered to every witness; retrying next round", "err", err)
		}
	}
}

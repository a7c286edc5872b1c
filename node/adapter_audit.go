package node

import (
	"context"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

// AuditLog is the production Auditor: node/internal/audit's Merkle log.
// Lookup keys become keyed subject references; nothing else about the
// person is written.
type AuditLog struct{ L *audit.Log }

// Record implements Auditor.
func (a AuditLog) Record(ctx context.Context, e AuditEvent) error {
	ev := audit.Event{
		Actor:   e.Actor,
		Action:  audit.Action(e.Action),
		Purpose: e.Purpose,
		Count:   e.Count,
		Outcome: audit.Outcome(e.Outcome),
		Peer:    e.Peer,
		Record:  e.LocalID,
	}
	if ev.Actor == "" {
		ev.Actor = "node:self"
	}
	for _, k := range e.Subject {
		ev.Subjects = append(ev.Subjects, a.L.Ref(k[:]))
	}
	_, err := a.L.Append(ev)
	return err
}

// Subject answers a subject-access query for the given lookup keys.
func (a AuditLog) Subject(lookups [][16]byte) (any, error) {
	refs := make([]audit.SubjectRef, len(lookups))
	for i, k := range lookups {
		refs[i] = a.L.Ref(k[:])
	}
	es, err := a.L.Subject(refs...)
	if es == nil {
		es = []audit.Entry{}
	}
	return es, err
}

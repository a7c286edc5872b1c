package node

import (
	"context"
	"time"

	"github.com/signpost-federation/signpost/node/internal/records"
)

// Retention: a record is held until its retention end (retainUntil) and no
// longer. Its entries expire at that instant in every replica, since they
// are published with the retention end as their expiry; the record itself,
// NHS number included, is removed by a sweep that runs when the node is
// created and then at the next retention end it knows of, at most
// retentionSweepEvery later, on the node's clock (Options.Now). For each
// record past its retention end the sweep
//
//   - deletes it from the records store (objected records too: the NHS
//     number is not kept past retention for any reason), advancing its
//     version as a deletion does;
//   - queues, in the same transaction, the withdrawal of its entries with a
//     tombstone at that version, so that a replica whose clock lags stops
//     serving them and watchers are told, when the node knows their keys
//     from publishing them (the records store keeps them; no issuer call:
//     the number is not tokenised again, nor kept in the outbox);
//   - writes a "retention-delete" audit event naming the local id (and the
//     subject by its keyed references when the keys are known), never the
//     NHS number.
//
// The publisher skips records past their retention end, so that an expired
// record is never published.
const (
	// retentionSweepEvery bounds the wait between sweeps (a record created
	// after a sweep may end before the next retention end it knew of).
	retentionSweepEvery = 15 * time.Minute
	// retentionRetry is the wait after a sweep failed.
	retentionRetry = time.Minute
	// retentionBatch bounds the records deleted in one transaction.
	retentionBatch = 1000
	// tombstoneTTL is how long a retention tombstone lives after the sweep:
	// long enough for any replica's clock to pass the entry's own expiry.
	tombstoneTTL = 24 * time.Hour
)

// sweepRetention deletes every record whose retention has ended, queues
// the withdrawal of the entries it knows the keys of, and audits each
// deletion. It returns how many it deleted and the earliest retention end
// still held (zero if none).
func (n *Node) sweepRetention(ctx context.Context) (int, time.Time, error) {
	// Contact requests have a retention of their own (Config.ContactRetention,
	// from their last change); a failure there does not hold up records.
	if _, err := n.sweepContacts(ctx); err != nil {
		n.log.Error("contact request retention sweep failed", "err", err)
	}
	total := 0
	for {
		now := n.opt.Now()
		gone, next, err := n.records.DeleteExpired(now, retentionBatch, now.Add(tombstoneTTL), records.Note{At: now})
		if err != nil {
			return total, time.Time{}, err
		}
		total += len(gone)
		for _, e := range gone {
			var subject [][16]byte
			for _, k := range e.Keys {
				subject = append(subject, k.Lookup)
			}
			n.audit(ctx, AuditEvent{Action: "retention-delete", Actor: "node:" + n.cfg.NodeID, LocalID: e.Record.LocalID, Count: 1, Outcome: "ok", Subject: subject})
		}
		if len(gone) > 0 {
			n.pub.kick()
		}
		if len(gone) < retentionBatch {
			if total > 0 {
				n.log.Info("retention sweep deleted records past their retention end", "count", total)
			}
			return total, next, nil
		}
	}
}

// retentionLoop sweeps whenever the next retention end is due (at most
// retentionSweepEvery apart) until ctx ends. The node sweeps once in New.
func (n *Node) retentionLoop(ctx context.Context, next time.Time) {
	for {
		wait := retentionSweepEvery
		if !next.IsZero() {
			// +1s: Expired is read to the second.
			wait = min(wait, max(next.Sub(n.opt.Now())+time.Second, time.Second))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var err error
		if _, next, err = n.sweepRetention(ctx); err != nil {
			n.log.Error("retention sweep failed; retrying", "err", err)
			next = n.opt.Now().Add(retentionRetry)
		}
	}
}

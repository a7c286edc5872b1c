// Package records keeps an agency's own records: "we hold a record for this
// person", keyed by the agency's local id, with the NHS number as a hidden
// field beside it.
//
// It is the node's system of record for what the node publishes into the
// federation. Data enters through [Store.Put] (one record, from the HTTP API)
// and [Store.PutBatch] (a CSV import), and leaves only towards the node's
// publisher, which needs the NHS number to tokenise it again (a new epoch, a
// new purpose). The NHS number is never returned by the node's API, never
// logged and never part of an error message: errors name the local id only.
//
// Every write that changes what the federation should see also stores, in
// the same transaction, an item in the store's outbox, which the node's
// publisher drains; the store remembers what was published for each record
// (epoch, version, expiry, keys) so that a start re-publishes only what is
// missing, changed or due (outbox.go).
//
// Data also leaves at the record's retention end: [Store.DeleteExpired]
// removes it (the node sweeps periodically and at start).
//
// A person's objection is kept as a marker, never as the number
// ([Store.ObjectPerson], objections.go): an HMAC-SHA256 of the number under
// the node-local key given to [Open].
//
// Invariants:
//   - The store is a bbolt file; every acknowledged write has been committed
//     with bbolt's default fsync, so a kill -9 loses nothing acknowledged.
//   - Version only grows per local id, and survives deletion (a deleted or
//     re-created record continues from the last version), because the
//     federation's last-writer-wins register is keyed by it.
//   - An objection covers the person, not a record: while the person's
//     marker (a keyed hash of the number, objections.go) stands, every
//     record of the person, held now or stored later, is objected
//     ([Record.Objected]) and never published; the marker outlives the
//     records (the retention sweep leaves it) until the objection is
//     withdrawn ([Store.WithdrawObjection]).
package records

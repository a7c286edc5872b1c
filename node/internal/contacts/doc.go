// Package contacts keeps a node's contact requests, both the ones its
// practitioners sent to other agencies and the ones other agencies sent to
// it, in a bbolt file beside the node's records (contacts.db), and is the
// one home of their state machine.
//
// A request is stored at the requester (side [Sent]) and at the holder
// (side [Received]); each node keeps its own copy under its own id, and the
// holder remembers the requester's id ([Request.RemoteID]) to send the
// decision back. Its state moves once:
//
//	new ──▶ answered   (with a named contact: free text, bounded)
//	   └──▶ declined   (with a reason: free text, bounded)
//
// Nothing else moves: a request is not answered twice, a decline is not
// undone ([ErrDecided]). [CanMove] is the rule, [Store.Decide] the only
// write that changes a state.
//
// Data enters through [Store.Create] (the requester when its practitioner
// asks, the holder when a request arrives) and [Store.Decide] (the holder's
// policy or staff; the requester when the holder's decision arrives).
// It leaves through [Store.List] and [Store.Get] (the node's inbox and "my
// requests"), [Store.Due] (holder decisions not yet delivered to the
// requester, which the node retries), and [Store.DeleteStale] (retention:
// requests unchanged for longer than the node's contact retention).
//
// Invariants:
//   - Every acknowledged write has been committed with bbolt's default
//     fsync: a kill -9 after a call returned loses nothing.
//   - A request never holds an NHS number: the subject is its lookup key
//     (and, at the holder, the holder's own local id).
//   - Free text (message, contact, reason, names) is valid UTF-8 without
//     control or formatting characters, and bounded ([ValidText]).
//   - A decision taken at the holder is marked undelivered in the same
//     transaction that takes it, so it is delivered (or given up on, and
//     said so) even if the node stops right after.
package contacts

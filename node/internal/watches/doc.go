// Package watches keeps a node's stored watches and their notices in a
// bbolt file beside the node's records (watches.db). The node core reaches
// it through the port.WatchStore interface (node/port); this package is
// its one implementation.
//
// A stored watch is a practitioner's request to be told when another
// agency becomes involved with a person, held for the user rather than
// for one WebSocket connection: it lasts across reloads, new tabs and node
// restarts until it expires or the user stops it. It names the person only
// by lookup keys (one per token key in force when it was started); the
// number's last four digits, which the page shows, never reach the node.
//
// Data enters through [Store.Create] (the user starts a watch, or extends
// one of the same purpose sharing a key: a new search during a key
// rotation adds the new key) and [Store.AddNotice] (the node saw a change
// under a watched key). It leaves through [Store.List], [Store.Notices]
// (the user's page), [Store.Delete] (the user stops a watch) and
// [Store.DeleteExpired] (the node's sweep).
//
// Invariants:
//   - Every acknowledged write has been committed with bbolt's default
//     fsync: a kill -9 after a call returned loses no watch and no notice.
//   - A watch's notices are deleted with it, in the same transaction, and
//     are bounded per watch (the oldest go first).
//   - Everything read back is decoded strictly and validated ([DecodeWatch],
//     [DecodeNotice]); a record that does not validate is an error, never
//     a guess.
package watches

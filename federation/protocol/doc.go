// Package protocol is the deterministic core of entry dissemination between
// Signpost nodes: rumour-mongering push for speed and pairwise anti-entropy
// for completeness, over any Transport and Membership. It replicates a
// locator.Store; production (package federation) drives it with a real
// clock, memberlist membership and authenticated connections, and sim
// drives the very same code in virtual time.
//
// # Determinism
//
// The Engine reads no clock, starts no goroutine and uses no global
// randomness: time comes from the now arguments of Publish, HandleMessage
// and Tick; randomness from Config.Rand; peers from Membership; and output
// goes only to Transport.Send. Given the same inputs in the same order it
// sends the same bytes. It is not safe for concurrent use: one goroutine of
// the harness calls it.
//
// # Push
//
// A version created here (Publish) is queued and, each PushInterval, sent in
// full to Fanout random peers (KindEntries, hops 1). A peer that accepts it
// as new relays it lazily: it announces the stamp (KindHave) to RelayFanout
// peers (by default ⌈ln N⌉ + 3 of N), which ask (KindWant) only for what they
// lack, up to MaxHops. Relays thus cost a stamp (57 bytes) per peer rather
// than an entry, which is what lets the relay fanout be large enough for push
// alone to reach nearly every node (a node is missed with probability about
// e^-RelayFanout; anti-entropy repairs those).
//
// # Back-pressure
//
// The push queue holds at most MaxPushQueue versions; beyond that, new
// versions are not pushed (Stats.PushDropped) — a bulk import does not
// flood the network or starve membership, it simply falls to anti-entropy.
// Every reply to a message, and every push round, is limited to
// MaxReplyBytes, every message to MaxMessageSize; when Transport.Send fails
// (its queue is full) the engine stops that exchange, and with MaxSendRate
// set the answers to anti-entropy and wants draw on a token bucket refilled
// by the harness's clock. Nothing is lost: the next anti-entropy round finds
// whatever is still missing.
//
// # Anti-entropy
//
// Every AntiEntropyInterval the engine sends its digest root (KindNodes,
// level 0, with a random session id) to one random peer. On KindNodes, for
// each bucket that differs from its own, a node
//   - if the bucket is at the common leaf depth, or either side holds at most
//     StampThreshold entries in it: sends its stamps for the bucket
//     (KindStamps) if it is the smaller side, or else echoes its own bucket
//     so that the other (smaller) side lists;
//   - otherwise sends its 16 children (KindNodes one level down).
//
// On KindStamps (a contiguous id range of a bucket), a node sends the
// entries the peer lacks or holds older (KindEntries, hops AEHops) and asks
// for those the peer holds newer (KindWant). Messages are self-contained:
// no session state is kept, so loss or duplication of any message only
// leaves a difference for a later round. The bytes spent thus track the
// number of differing buckets and entries, not the size of the set.
//
// # Wire format
//
// See Message. Every decoder checks lengths before allocating; garbage is
// rejected with ErrBadMessage and counted, never a panic.
//
// # Test harness
//
// Package protocoltest holds a small deterministic in-memory network (loss,
// duplication, reordering, byte accounting) that the tests here use.
package protocol

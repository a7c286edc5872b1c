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
// as new relays it lazily and at once: it announces the stamp (KindHave) to
// RelayFanout peers (by default ⌈ln N⌉ + 3 of N), up to MaxHops. Relays
// thus cost a stamp (57 bytes) per peer rather than an entry, which is what
// lets the relay fanout be large enough for push alone to reach nearly
// every node.
//
// Random relaying still misses a node with probability about
// e^-RelayFanout, which at thousands of nodes is some node for nearly
// every version. So every node also announces what it accepts (or
// creates) to its ring successor, the peer after it in id order, even past
// MaxHops: a node is then missed only if its predecessor was too, and a
// run of misses is filled one successor after another.
//
// # Pull on announcement
//
// A node that hears a stamp of a version it lacks or holds older asks the
// announcer for it at once (KindWant); a second announcer heard while the
// request is slow (a quarter of PullTimeout) is asked too. If no answer
// comes within PullTimeout (jittered) the next announcer is asked, or the
// last one again, waiting twice as long each time; after four timeouts the
// version is left to anti-entropy. Pulls are
// bounded in number (MaxPulls) and per peer (MaxPullsPerPeer): stamps
// beyond are ignored, so a flood of stamps from a faulty or hostile member
// costs a bounded number of requests and no unbounded state. What a pull
// brings is applied like any other entry: a forged one is refused by the
// store, and the pull goes on to the next announcer.
//
// # Membership
//
// The harness calls PeerAlive when membership reports a peer joined, or
// back after suspicion, death or a partition. After a jitter the engine
// starts an anti-entropy exchange with a sample of such peers (rate
// limited: a whole healed partition costs each node one or two exchanges,
// a lone returning node a few exchanges in all), and re-announces to the
// returning peer the versions it created while the peer was unreachable —
// otherwise old news that only a random exchange would bring. Membership
// never withdraws or hides data: a peer leaving or declared dead changes
// who is sent to, nothing in the store.
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

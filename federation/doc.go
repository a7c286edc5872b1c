// Package federation is the membership and transport layer of Signpost: it
// decides who is in a federation, and carries locator entries between the
// nodes that are.
//
// # Enrolment
//
// A federation has one authority, an Ed25519 key held offline by its
// operator (`signpost federation init`). The authority signs each node's
// [Descriptor] — node id, agency, category, authorised purposes, the node's
// own Ed25519 public key, validity period and serial — producing a
// [SignedDescriptor] (`signpost federation enrol`), and signs a versioned
// [RevocationList] (`signpost federation revoke`). Every node is configured
// with the authority's public key; nothing else is trusted.
//
// A descriptor is believed only if [SignedDescriptor.Verify] passes: the
// authority signature over the canonical encoding, now within
// [NotBefore, Expires), and not named by the newest revocation list the node
// has verified. The sentinels [ErrNotEnrolled], [ErrDescriptorForged],
// [ErrDescriptorExpired] and [ErrDescriptorRevoked] say why one was refused.
//
// # Membership
//
// Membership and failure detection are hashicorp/memberlist (SWIM with
// Lifeguard). Gossip is encrypted with the federation's gossip key (AES-256,
// memberlist's keyring) and labelled "signpost/v1/<federation id>". A node's
// memberlist name is its node id and its metadata carries its signed
// descriptor plus the address of its peer API (meta.go). memberlist's
// alive and merge delegates refuse nodes with no, forged, expired or revoked
// descriptors, or whose name is not the descriptor's node id.
//
// memberlist never probes a node it has declared dead, so the agent
// rejoins failed (not departed) members every Config.ReconnectInterval, as
// serf does; that is what heals a partition longer than memberlist's
// gossip-to-the-dead window. Membership changes are reported on
// Config.Events (joined, left, updated, refused — never blocking). A member
// that joins or comes back alive is also reported to the engine
// (protocol.Engine.PeerAlive, with since when it was unreachable, less a
// minute for probing and suspicion), which reconciles with it at once and
// announces to it again the versions created here while it was away.
//
// Membership is not data: a node memberlist marks dead keeps its entries in
// every replica. Only revocation removes a node's entries, and since entries
// are sealed (no replica can see which node holds an entry) revocation acts
// on the reader: [Agent.NodeKey], which locator uses to check the holder's
// signature inside an opened entry, answers false for a revoked (or expired)
// node, so its entries are refused by every reader that has the token. The
// entries themselves age out at their expiry.
//
// # Dissemination
//
// Entries do not ride memberlist's broadcast queue. The protocol core
// (federation/protocol: rumour mongering plus digest anti-entropy) is
// deterministic and not goroutine-safe; the [Agent] owns one engine and runs
// it on a single goroutine, fed by a channel of inbound messages and publish
// requests and woken by a timer at the engine's NextWake.
//
// Protocol messages travel over the peer API: HTTPS with mutual TLS 1.3,
// where each node presents a self-signed certificate made with its enrolled
// key that embeds its signed descriptor. A peer is authenticated by
// verifying that descriptor (authority, validity, revocation) and checking
// that the certificate's key is the descriptor's key — no CA. Messages are
// POSTed in length-prefixed batches to /federation/v1/messages; each peer has
// a bounded send queue, and a full queue drops (anti-entropy repairs what is
// dropped).
//
// # Goroutines and lifecycle
//
// NewAgent opens the replica; Start binds memberlist and the peer API and
// starts the engine loop, the reconnect loop, the descriptor saver, the
// HTTP server and, lazily, one sender per peer. Leave (announce, then shut
// down) and Shutdown are idempotent and wait for every one of them before
// closing the replica. Revocation lists spread over the peer API: a node
// that adopts a newer list pushes it to every alive member, and to each
// member it sees join.
//
// # Threshold token keys
//
// Each (purpose, epoch) token key is made with no dealer by the issuers
// themselves (federation/dkg: joint-Feldman DKG, and reshare). The agent
// carries a session's messages over the peer API (POST /federation/v1/dkg,
// authenticated members named in the session only; the first message of
// a session a node does not know must be a Hello, which carries the
// config), with one driver goroutine per session that ticks it at its
// deadlines on Config.Now and resends what it said until it is final, so
// a late joiner catches up. [Agent.StartDKG] starts a session,
// [Agent.DKGStatus] follows it, a DKGEnded event reports its end. Every
// holder writes its share (Config.ShareDir, "SIGNPOST KEY SHARE", 0600;
// [LoadShare] refuses a file group or others can read) and the public
// result ("SIGNPOST DKG RESULT"), which the authority signs offline into a
// [KeyRecord] (`signpost federation sign-key`). Key records spread like
// revocation lists (POST /federation/v1/key-records; pushed on adopt and to
// each member that joins); per (purpose, epoch) the highest Serial is in
// force ([Agent.KeyRecords], KeyRecordAdopted events). [Agent.StartReshare]
// moves a key to a new issuer set; a holder deals only in a reshare its own
// operator started or approved ([Agent.ApproveReshare]), and erases its old
// share with [Agent.EraseOldShares] once the new record is in force.
//
// # Command line
//
// `signpost federation init|keygen|enrol|revoke` are the authority's tools
// (no command makes a whole token key: `keygen -issuer` is refused);
// `signpost federation run -config node.json` runs one node's federation
// layer alone from a JSON [RunConfig] (tests, demos), printing its
// addresses and membership events. `signpost federation sign-key` signs a
// DKG result into a key record; `signpost federation keys FILE` prints a
// key-record file (purpose, epoch, t, n, issuers; there is no secret in
// it).
//
// # Metrics
//
// Agent.Collector is a prometheus.Collector of the agent's Stats
// (signpost_federation_*: members, posts to peers, engine messages and
// bytes by class, entries applied, anti-entropy sessions…) read at each
// scrape, and of memberlist's own metrics (memberlist_*), which memberlist
// reports through the process-wide go-metrics instance: the first Collector
// call installs a Prometheus sink there, each agent labels its memberlist
// series node=<node id>, and each Collector forwards its own agent's.
//
// # Files
//
// All files are PEM; private material is written with mode 0600 and never
// logged. An authority directory holds authority.key ("SIGNPOST AUTHORITY
// KEY": the 32-byte Ed25519 seed), authority.pub ("SIGNPOST AUTHORITY PUBLIC
// KEY"), gossip.key (one or more "SIGNPOST GOSSIP KEY" blocks of 32 bytes,
// the first primary), revocations.pem ("SIGNPOST REVOCATION LIST") and
// serial (the last serial issued, decimal). A node credentials file holds a
// "SIGNPOST NODE DESCRIPTOR" block and a "SIGNPOST NODE KEY" block (the
// node's 32-byte Ed25519 seed); with keygen the key is made on the node
// ("SIGNPOST NODE KEY" file and "SIGNPOST NODE PUBLIC KEY" file), the
// authority enrols the public key, and the credentials file is the
// descriptor file followed by the key file. A node's data directory holds
// locator.db (the bbolt replica), descriptors.pem (every descriptor it has
// verified, so that NodeKey answers after a restart) and revocations.pem
// (the newest list it has adopted), keyrecords.pem ("SIGNPOST KEY RECORD"
// blocks: the records in force) and keys/ (its key shares and DKG
// results). The binary layouts of the descriptor and the
// revocation list are documented on their encoders (descriptor.go,
// revocation.go); both are canonical: a decoder refuses any input that would
// not re-encode to the same bytes.
package federation

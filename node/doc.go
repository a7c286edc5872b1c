// Package node is the agency service: what an agency installs and its
// practitioners use. It integrates the other parts of Signpost: identifiers
// and tokens from the wasm module, entries from the locator, dissemination
// from the federation.
//
// What it owns:
//
//   - The agency's own records (node/internal/records, bbolt under
//     Config.DataDir): local id, the NHS number as a hidden field, category,
//     retention end. The NHS number is stored only to tokenise it again; no
//     API answer, log line or error message ever contains it. A record is
//     deleted at its retention end, by a sweep at start and in the
//     background (retention.go); the publisher skips one past it.
//   - Publishing, through a durable outbox (outbox.go): a record write
//     commits the record change and an outbox item in one bbolt
//     transaction; the item is then published before the answer, or, when
//     the issuer cannot be reached, waits (202 "published": false) for the
//     background publisher, which retries with capped back-off. A record
//     is tokenised for each purpose in Config.Purposes (through the issuer)
//     and published as one entry per purpose, expiring at the record's
//     retention end (or sooner under Config.EntryLifetime, then refreshed).
//     The records store remembers what was published (epoch, version,
//     keys), so a start tokenises nothing that is published already, and a
//     withdrawal needs no issuer. Delete withdraws (tombstones) the
//     entries.
//   - Objections (objection.go): an objection covers the person at this
//     agency (POST /v1/objections, the number in the body; or
//     POST /v1/records/{localId}/objection, through one of their records).
//     It is kept as a marker, HMAC-SHA256 of the canonical number under the
//     node-local objection key (ObjectionKeyFile, 0600, made at first
//     start; the node refuses one others can read), in the records
//     database, committed before the answer and kept past the records'
//     retention end. Every record of the person, held or written later, is
//     withdrawn and never published while it stands; a write for the
//     person is stored, not published ("withheld": "objected", audited as
//     record-withheld). POST /v1/objections/withdraw ends it and publishes
//     again every record of the person still held. Neither the number nor
//     the marker is ever logged, audited or answered.
//   - Tokens from t of n issuers: each (purpose, epoch) key is Shamir-shared
//     among n issuer nodes (Options.Keyring: the signed key records, and
//     this node's share if it is one). To tokenise, a node asks t issuers
//     — itself through its share, the others over the federation's
//     mutually authenticated peer transport (PeerHandler,
//     PeerEvaluatePath) — and another at once for each that fails, and
//     the rest when the first are slower than Config.IssuerHedge; it
//     verifies each partial's proof and returns the first t valid ones; a
//     bad one is rejected, counted and audited. Its native tokenizer
//     combines them without checking the proofs again.
//     Fewer than t: *IssuersError, 503 issuers_unavailable. As an issuer,
//     a node evaluates with its share only for purposes the requesting
//     node's descriptor authorises, within a per-node rate, auditing who,
//     purpose and count (api_tokens.go). GET /v1/federation shows operators
//     the keys and each issuer's last answer.
//   - The HTTP API (openapi.json, served at /v1/openapi.json): records,
//     import, locate, token evaluation, lookup of sealed entries, contact
//     requests, the /v1/watch WebSocket, probes and Prometheus metrics
//     (/metrics serves Options.Metrics: the core registers its own series
//     there, the assembly the other parts' collectors; metrics.go).
//     Errors are {"error":{"code","message"}}, also for what net/http
//     answers itself (uniform.go); every body is size-limited and
//     strictly decoded (no unknown field, no key named twice); a rejected request writes nothing (tokenisation, the
//     step that can fail for reasons outside the node, runs before any
//     write). An import (POST /v1/records/import, [Node.Import]) handles
//     each row on its own — a bad row is reported with its line and reason
//     and never costs a good one — and is all or nothing otherwise: the
//     whole CSV is read, validated and tokenised before its records are
//     committed in one transaction, so an import answered with an error
//     status wrote nothing, and one answered 200 handled every row.
//   - Stored watches (watches.go, node/internal/watches through the
//     WatchStore port; watches.db, bbolt): a practitioner's watch held for
//     the user, not for one connection, until Config.WatchExpiry or until
//     stopped (POST, GET, DELETE /v1/watches). It names lookup keys, a
//     purpose, the user and its times — never the number, whose last four
//     digits the page keeps in the browser. Every change under its keys is
//     stored as a notice (time, watch id; bounded per watch, deleted with
//     the watch) before it is sent to the user's open sockets, and shown
//     when a closed page returns; a sweep on the node's clock deletes
//     expired watches. A key rotation: the watch keeps its keys; a new
//     search of the person renews it and adds the new key (docs/DESIGN.md).
//   - Live notices: a watcher names lookup keys and receives "involved" and
//     "withdrawn" notices carrying the sealed entry; the node's own staff
//     also receive "match" notices (another agency's new entry under one of
//     this node's lookup keys) and "contact-request" notices; the
//     practitioner who sent a contact request receives the holder's
//     decision as a "contact-answer" notice; every socket of a user also
//     receives the notices of their stored watches (with watchId, seq, at).
//   - Contact requests (contact.go, node/internal/contacts): stored at the
//     requester and at the holder (contacts.db, bbolt), each committed
//     before it is acknowledged; new → answered (a named contact) or
//     declined (a reason), by the holder's policy or its staff, audited
//     on the side where it happens; a decision travels back over the peer
//     transport and is retried until delivered; deleted contact_retention
//     after their last change.
//   - Shielded services (broker.go): a node with Config.Shielded publishes
//     entries that name its broker (Config.Broker) and seal its identity
//     to it; locate answers, notices and the page show such a holder as
//     "a service that protects its patients' confidentiality" (never as the
//     broker's record). It hands its entries to the broker to publish
//     (PeerShieldedEntriesPath), never pushing them itself. Contact
//     requests for it go to the broker
//     (PeerBrokerPath), which opens the sealed identity (the Shields port),
//     relays only for Config.BrokerFor, keeps a "relayed" request with
//     nothing about the person, and relays the holder's decision back; the
//     holder's staff decide whether to be named (consent).
//   - Witnessing of audit logs (audit_witness.go): the node offers its
//     signed audit tree head to every other member (PublishAuditHead, run
//     by the stack at an interval), keeps the latest head of each other
//     node that extends the one before (node/internal/audit's Witness),
//     and serves GET /v1/audit/heads to auditors. See docs/AUDIT.md.
//
// Who is "self" in a locate answer: the caller's own agency is never listed
// in holders; the boolean selfHolds says whether it holds a record too. A
// system caller holds the number anyway, and a practitioner wants to know
// who ELSE is involved. The lookup answer names the serving node (self), and
// the practitioner page follows the same rule: its own agency is said apart
// ("your agency also holds a record"), never counted among the others and
// never offered "request contact".
//
// # Layout
//
// The compiler keeps the core apart from the parts it integrates
// (TestCoreImportsNoOtherPart fails if `go list -deps ./node` shows the
// wasm module, the locator, the federation, the adapters or the stack):
//
//	    main.go ── signpost node / signpost demo
//	       │
//	       ▼
//	node/stack ─── assembly: StartStack, StartDemo, NodeMain, DemoMain
//	   │    │
//	   │    ▼
//	   │  node/adapter ── NativeTokenizer, IssuerEvaluator ──▶ wasm
//	   │       │          LocatorIndex, StaticNodeKeys   ──▶ locator
//	   │       │          AgentPeers, PeerID             ──▶ federation
//	   │       │ implements
//	   ▼       ▼
//	node ───▶ node/port ── Tokenizer, Evaluator, Index, Peers, Shields (+ Keys,
//	(core)                 Sealed, Holding, IndexEvent, MemberKey, PeerError)
//	   │
//	   └────▶ node/internal/... ── records, watches, auth, audit, httpx, csvrec
//
// What each part owns:
//
//   - node (this package), the core: handlers, policies (purposes, roles,
//     rate limits, retention, contact requests, watches) and the ports it
//     needs, re-exported from node/port. It imports the standard library,
//     third-party libraries, node/port and node/internal/... only.
//   - node/port: the port interfaces and the values that cross them, a leaf
//     (standard library only), so that adapters implement them without
//     importing the core, and the core's tests run against real adapters.
//   - node/adapter: the ports bound to the wasm runtime (tokenizer, native
//     issuer), the locator (holder and replica) and the federation agent
//     (peer calls, membership).
//   - node/stack: StartStack assembles a complete node — federation agent
//     and its bbolt replica, the shared wasm runtime, the issuer if this
//     node holds the key, users and sessions, the signed audit log, the HTTP
//     server, and the node's publisher (Node.Start: ready at once; what is
//     still to publish drains from the outbox while the issuer answers, and
//     /readyz says what is degraded).
//     StartDemo builds four of them on loopback with an authority created
//     on the fly. NodeMain and DemoMain are `signpost node` and `signpost
//     demo`.
//   - node/internal/watches (stored watches and their notices, behind
//     port.WatchStore), records (the agency's records), auth (users, sessions,
//     API tokens, CSRF, origins, token buckets), audit (the signed log),
//     httpx (the API's JSON and error shape), csvrec (reading import CSV,
//     for the endpoint and the `signpost node import` client alike);
//     leakscan and secrethook serve the tests' leak scanner only.
//   - The auth and audit ports (Authenticator, Auditor) are bound in the
//     core itself (UserAuth, AuditLog), since their packages are the
//     node's own internals.
//
// # One home per rule
//
//   - Purpose names: the core refuses any purpose outside Config.Purposes;
//     the syntax of a name is wasm/purpose's alone, checked at config time
//     by stack.ValidateConfig (as the token code and the federation's
//     descriptors check it).
//   - Rate limits and daily quotas: the table costs in ratelimit.go
//     (route → cost, and whether it spends the user's daily quota),
//     charged by the router before a handler runs (jsonHandler,
//     chargedRoute) and, for the issuer's per-node budget, where the
//     issuer evaluates.
//   - Field sets: records.ValidLocalID and records.ValidCategory, for the
//     API, imports and the config alike.
//   - JSON and errors: node/internal/httpx (Decode, WriteJSON, the error
//     envelope and every code as an httpx.Code, all listed in
//     openapi.json).
//   - Origins: auth.OriginAllowed with Config.AllowedOrigins, for the
//     watch and for cookie-authenticated writes alike.
//   - Modulus 11: the wasm module (the demo draws its people from
//     wasm.GenerateTestNumbers).
//
// Two paths to "who else is involved":
//
//   - Systems that hold the number call POST /v1/locate: the node validates
//     and tokenises it through the wasm module (blinded, evaluated by the
//     issuer, proof verified), looks up, opens and verifies the entries
//     against the membership, and answers with the other holders.
//   - Browsers tokenise in the page and call POST /v1/tokens/evaluate and
//     POST /v1/lookup, which returns sealed entries and the members' public
//     keys. The seal key never reaches the server on this path (a sealKey
//     field is refused); the page opens the entries in the wasm module
//     (OpOpenEntries) and names their holders itself.
//
// Data enters through the API (records, imports, lookups) and through the
// federation (entries of other agencies, arriving in the local replica and
// surfacing as Index events); it leaves as published entries, API answers
// and WebSocket notices — never as an NHS number.
package node

// Package dkg makes a threshold token key with no dealer: the joint-Feldman
// (Pedersen) distributed key generation among the n issuer nodes of one
// (purpose, epoch), and the reshare that moves the same key to a new issuer
// set. It owns the protocol only: no network, no goroutines, no clock. The
// federation agent (package federation) carries its messages over the
// mutually-authenticated peer API, calls Tick on its own clock, stores the
// participant's share file and hands the public result to the authority, which
// signs it into a key record.
//
// # Protocol
//
// Every participant runs one [Session], a deterministic state machine fed
// with messages ([Session.Handle]) and times ([Session.Tick]). The schedule
// is absolute and part of the [Config] (Start + p·PhaseTimeout ends phase p),
// so every participant agrees on every deadline without a shared clock
// inside the package; a phase ends early once every expected message is in.
//
//  1. Hello: each participant broadcasts a fresh HPKE (X25519, HKDF-SHA256,
//     ChaCha20-Poly1305) public key, and the session's configuration, so that
//     the first message a participant receives for a session tells it
//     everything it needs to join.
//  2. Deal: each dealer picks a polynomial f_j of degree t−1 (circl
//     secretsharing), broadcasts its Feldman commitments C_{j,l} = a_{j,l}·G
//     and, in the same message, one HPKE ciphertext of f_j(x_m) per recipient
//     m; the HPKE info binds the session, the dealer and the recipient.
//  3. Complaints: each recipient decrypts and verifies its shares against
//     the commitments and broadcasts the list of dealers whose share was
//     missing or bad (possibly empty: the message also says "I am done").
//  4. Justification: an accused dealer reveals, in clear, the share of each
//     complainer, with its commitments. Everyone checks them; a dealer with
//     a valid justification stays (the complainer uses the revealed share),
//     one with none or an invalid one is disqualified.
//  5. Confirm: QUAL is the dealers not disqualified (at least t, else the
//     session aborts). Each recipient computes its share x_m = Σ_{j∈QUAL}
//     f_j(x_m), every public share K_m and the group key K = Σ_j C_{j,0},
//     and broadcasts a hash of (QUAL, commitments). Any mismatch aborts: a
//     dealer that sent different commitments to different participants
//     (equivocation over point-to-point links) is caught here.
//
// The holders of the finished key are the recipients (dealers in QUAL, for
// a fresh key) whose confirmation matched; there must be at least t.
//
// # Reshare
//
// A reshare ([NewReshare]) moves the key of a current key record to a new
// participant set with a new threshold. The dealers are the current holders:
// each deals f_i with f_i(0) = k_i, and every recipient checks that the
// commitment C_{i,0} equals K_i from the current record. At least the old
// threshold of them must qualify; new holder j's share is Σ λ_i·f_i(x_j)
// (Lagrange at 0 over QUAL's old indices), so K is unchanged and the record
// lists the new issuers. An old holder must erase its old share once the new
// record is adopted: that is the caller's explicit step (the agent's
// share-file removal), since only the caller knows when the new record is in
// force.
//
// # Secrets
//
// The only secret a Session returns is the participant's own share
// ([Result].Share). The whole key k exists nowhere: not in a message, not in
// a Result, not in a file. Messages carry shares only encrypted to their
// recipient, except for the shares a justification reveals, which belong to
// a complainer and, alone, reveal nothing about k. Known limits are in
// docs/RATIONALE.md ("Why joint-Feldman DKG?").
package dkg

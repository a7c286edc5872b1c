package federation

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/group"

	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestKeyRecordsSpread: a record given to one node reaches every member, a
// newer one for the same (purpose, epoch) replaces it everywhere, a stale
// one is refused, a node that joins later receives the records in force,
// and each adoption is reported as an event.
func TestKeyRecordsSpread(t *testing.T) {
	f := newTestFed(t)
	agents := f.cluster(t, 3, true)
	ks, _ := localDKG(t, 2, 3)
	r1 := signedRecord(t, f.auth, ks, 1)
	if err := agents[0].SetKeyRecord(r1); err != nil {
		t.Fatal(err)
	}
	waitRecord := func(agents []*Agent, serial uint64) {
		t.Helper()
		testutil.Eventually(t, convergeTimeout, func() error {
			for _, a := range agents {
				r, ok := a.KeyRecord("safeguarding", 1)
				if !ok || r.Serial != serial {
					return fmt.Errorf("%s has no record with serial %d", a.Self().NodeID, serial)
				}
			}
			return nil
		})
	}
	waitRecord(agents, 1)
	if err := agents[1].SetKeyRecord(r1); !errors.Is(err, ErrKeyRecordStale) {
		t.Fatalf("same serial again: %v", err)
	}
	r2 := signedRecord(t, f.auth, ks, 2)
	if err := agents[2].SetKeyRecord(r2); err != nil {
		t.Fatal(err)
	}
	waitRecord(agents, 2)
	forged := *r2
	forged.Serial = 3
	if err := agents[0].SetKeyRecord(&forged); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("forged record: %v", err)
	}

	events := make(chan MemberEvent, 64)
	cfg := f.config(f.creds(t, "node-late"), t.TempDir())
	cfg.Events = events
	late := startAgent(t, cfg)
	if _, err := late.Join([]string{agents[0].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	waitRecord([]*Agent{late}, 2)
	testutil.Eventually(t, convergeTimeout, func() error {
		for {
			select {
			case ev := <-events:
				if ev.Type == KeyRecordAdopted && ev.KeyRecord.Serial == 2 {
					return nil
				}
			default:
				return errors.New("no KeyRecordAdopted event")
			}
		}
	})
	if got := late.KeyRecords(); len(got) != 1 || !bytes.Equal(got[0].Encode(), r2.Encode()) {
		t.Fatalf("late node's records: %v", got)
	}
	// Persisted: a restart keeps the record.
	if _, err := os.Stat(cfg.DataDir + "/" + KeyRecordsFile); err != nil {
		t.Fatal(err)
	}
}

// dkgCluster starts n agents with data dirs (so share dirs) and a short
// DKG phase timeout; prepare hooks apply per agent index.
func dkgCluster(t *testing.T, f *testFed, n int, prepare map[int]func(*Agent)) []*Agent {
	t.Helper()
	agents := make([]*Agent, n)
	for i := range agents {
		cfg := f.config(f.creds(t, fmt.Sprintf("node-%d", i)), t.TempDir())
		cfg.DKGPhaseTimeout = 3 * time.Second
		var ps []func(*Agent)
		if p := prepare[i]; p != nil {
			ps = append(ps, p)
		}
		agents[i] = startAgent(t, cfg, ps...)
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)
	return agents
}

func dkgConfig(tt int, agents ...*Agent) dkg.Config {
	cfg := dkg.Config{Purpose: "safeguarding", Epoch: 3, T: tt}
	for i, a := range agents {
		cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: a.Self().NodeID, Index: uint16(i + 1)})
	}
	return cfg
}

// waitDKG waits until every agent's session id is final and returns their
// statuses.
func waitDKG(t *testing.T, id dkg.SessionID, agents ...*Agent) []DKGStatus {
	t.Helper()
	out := make([]DKGStatus, len(agents))
	testutil.Eventually(t, convergeTimeout, func() error {
		for i, a := range agents {
			st, ok := a.DKGStatus(id)
			if !ok || st.Phase < dkg.PhaseDone || (st.Phase == dkg.PhaseDone && st.ResultPath == "") {
				return fmt.Errorf("%s: session %v", a.Self().NodeID, st.Phase)
			}
			out[i] = st
		}
		return nil
	})
	return out
}

// TestDKGOnAgents: three real agents make a 2-of-3 key over the peer API;
// all hold consistent shares (owner-only files), the authority signs the
// result, the record spreads, every issuer loads its share against it,
// and k (reconstructed here, in the test only) matches the group key.
// Then the key is reshared to a new set with the same group key, and the
// old holder that left erases its share.
func TestDKGOnAgents(t *testing.T) {
	f := newTestFed(t)
	agents := dkgCluster(t, f, 4, nil)
	ctx := context.Background()
	id, err := agents[0].StartDKG(ctx, dkgConfig(2, agents[:3]...))
	if err != nil {
		t.Fatal(err)
	}
	sts := waitDKG(t, id, agents[:3]...)
	var result []byte
	for i, st := range sts {
		if st.Phase != dkg.PhaseDone || st.Err != "" || len(st.Holders) != 3 {
			t.Fatalf("node-%d: %+v", i, st)
		}
		ks, err := LoadDKGResult(st.ResultPath)
		if err != nil {
			t.Fatal(err)
		}
		if result == nil {
			result = ks.Encode()
		} else if !bytes.Equal(result, ks.Encode()) {
			t.Fatalf("node-%d's result differs", i)
		}
		info, err := os.Stat(st.SharePath)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("node-%d share file: %v %v", i, info, err)
		}
	}
	if _, ok := agents[3].DKGStatus(id); ok {
		t.Fatal("a node not named joined the session")
	}
	ks, err := agents[1].DKGResult(id)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(sts[0].ResultPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("result file in the data directory: %v %v", info, err)
	}
	rec := signedRecord(t, f.auth, ks, 1)
	if err := agents[0].SetKeyRecord(rec); err != nil {
		t.Fatal(err)
	}
	var shares []*dkg.Share
	testutil.Eventually(t, convergeTimeout, func() error {
		shares = shares[:0]
		for _, a := range agents[:3] {
			if _, ok := a.KeyRecord("safeguarding", 3); !ok {
				return fmt.Errorf("%s does not have the record yet", a.Self().NodeID)
			}
			sh, err := a.Share("safeguarding", 3)
			if err != nil {
				return err
			}
			shares = append(shares, sh)
		}
		return nil
	})
	if _, err := agents[3].Share("safeguarding", 3); !errors.Is(err, ErrNoShare) {
		t.Fatalf("non-issuer's share: %v", err)
	}
	k := recoverKey(t, 2, shares[1:])
	if !bytes.Equal(mustMarshal(t, group.Ristretto255.NewElement().MulGen(k)), ks.GroupKey) {
		t.Fatal("k·G is not the group key")
	}

	// Reshare to node-1, node-2, node-3 with t = 2: node-0 leaves. Every
	// old holder's operator starts (approves) the identical config.
	rc := dkgConfig(2, agents[1:]...)
	rc.Purpose, rc.Epoch = "safeguarding", 3
	rc.Start = time.Now()
	var rid dkg.SessionID
	for _, a := range agents[:3] {
		if rid, err = a.StartReshare(ctx, rc); err != nil {
			t.Fatal(err)
		}
	}
	rsts := waitDKG(t, rid, agents...)
	for i, st := range rsts {
		if st.Phase != dkg.PhaseDone || st.Err != "" {
			t.Fatalf("reshare on node-%d: %+v", i, st)
		}
	}
	if rsts[0].SharePath != "" {
		t.Fatal("the leaving holder got a new share")
	}
	nks, err := LoadDKGResult(rsts[1].ResultPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(nks.GroupKey, ks.GroupKey) || len(nks.Issuers) != 3 || nks.Issuers[0].NodeID != "node-1" {
		t.Fatalf("reshared key set %+v", nks)
	}
	if err := agents[3].SetKeyRecord(signedRecord(t, f.auth, nks, 2)); err != nil {
		t.Fatal(err)
	}
	var nshares []*dkg.Share
	testutil.Eventually(t, convergeTimeout, func() error {
		nshares = nshares[:0]
		for _, a := range agents[1:] {
			if r, ok := a.KeyRecord("safeguarding", 3); !ok || r.Serial != 2 {
				return fmt.Errorf("%s does not have the reshare's record yet", a.Self().NodeID)
			}
			sh, err := a.Share("safeguarding", 3)
			if err != nil {
				return err
			}
			nshares = append(nshares, sh)
		}
		return nil
	})
	if k2 := recoverKey(t, 2, nshares[1:]); !k2.IsEqual(k) {
		t.Fatal("the reshared shares reconstruct another key")
	}
	removed, err := agents[0].EraseOldShares("safeguarding", 3)
	if err != nil || len(removed) != 1 || removed[0] != sts[0].SharePath {
		t.Fatalf("erase on the leaving holder: %v %v", removed, err)
	}
	if _, err := os.Stat(sts[0].SharePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old share still there: %v", err)
	}
	// No file any agent wrote contains k, in any encoding.
	forms := secretEncodings(t, k)
	for _, a := range agents {
		err := filepath.WalkDir(a.cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, f := range forms {
				if bytes.Contains(b, f) {
					return fmt.Errorf("%s contains the key k", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	removed, err = agents[1].EraseOldShares("safeguarding", 3)
	if err != nil || len(removed) != 1 || removed[0] != sts[1].SharePath {
		t.Fatalf("erase on a staying holder: %v %v", removed, err)
	}
	if _, err := agents[1].Share("safeguarding", 3); err != nil {
		t.Fatalf("the staying holder lost its new share: %v", err)
	}
	// Once the key is retired (a higher serial with RetireAt passed), its
	// issuers erase every share of it.
	retired := KeyRecordFromKeySet(nks)
	retired.Serial, retired.NotBefore, retired.RetireAt = 3, time.Now().Add(-time.Minute), time.Now().Add(-time.Second)
	srec, err := f.auth.SignKeyRecord(retired)
	if err != nil {
		t.Fatal(err)
	}
	if err := agents[1].SetKeyRecord(srec); err != nil {
		t.Fatal(err)
	}
	removed, err = agents[1].EraseOldShares("safeguarding", 3)
	if err != nil || len(removed) != 1 || removed[0] != rsts[1].SharePath {
		t.Fatalf("erase on retirement: %v %v", removed, err)
	}
	if _, err := os.Stat(rsts[1].SharePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the retired key's share is still there: %v", err)
	}
}

func mustMarshal(t *testing.T, e group.Element) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDKGAgentStops: one of three agents stops mid-DKG (after its hello,
// or after its deal); the others finish without it when t = 2 allows, or
// abort with a status that names it when t = 3 does not.
func TestDKGAgentStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		t      int
		after  dkg.Kind
		reason string // the others' abort reason, or the exclusion reason
		done   bool
	}{
		{"after hello, t=2", 2, dkg.KindHello, "sent no deal", true},
		{"after deal, t=3", 3, dkg.KindDeal, "unconfirmed: node-2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFed(t)
			stopped := make(chan struct{})
			agents := dkgCluster(t, f, 3, map[int]func(*Agent){2: func(a *Agent) {
				a.dkgOutFilter = func(m dkg.Message) bool {
					if m.Kind > tc.after {
						select {
						case <-stopped:
						default:
							close(stopped)
						}
						return false
					}
					return true
				}
			}})
			id, err := agents[0].StartDKG(context.Background(), dkgConfig(tc.t, agents...))
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-stopped:
			case <-time.After(convergeTimeout):
				t.Fatal("node-2 never got past its " + tc.after.String())
			}
			// node-2 resends what it sent until it stops: stop it once the
			// others have it all, so the crash point is exact.
			testutil.Eventually(t, convergeTimeout, func() error {
				for _, a := range agents[:2] {
					st, ok := a.DKGStatus(id)
					if !ok || st.Phase <= dkg.Phase(tc.after) || len(st.Excluded) != 0 {
						return fmt.Errorf("%s: %+v", a.Self().NodeID, st)
					}
				}
				return nil
			})
			if err := agents[2].Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			sts := waitDKG(t, id, agents[:2]...)
			for i, st := range sts {
				if !tc.done {
					if st.Phase != dkg.PhaseAborted || !strings.Contains(st.Reason, tc.reason) {
						t.Fatalf("node-%d: %s %q, want abort %q", i, st.Phase, st.Reason, tc.reason)
					}
					continue
				}
				if st.Phase != dkg.PhaseDone || !slices.Equal(st.Holders, []string{"node-0", "node-1"}) ||
					!slices.ContainsFunc(st.Excluded, func(e dkg.Exclusion) bool {
						return e.NodeID == "node-2" && strings.Contains(e.Reason, tc.reason)
					}) {
					t.Fatalf("node-%d: %+v", i, st)
				}
			}
		})
	}
}

// TestDKGRefusals: a node takes part only in sessions that name it and the
// caller, among enrolled members it knows, and deals its share in a
// reshare only of the record in force and only once its operator approved.
func TestDKGRefusals(t *testing.T) {
	f := newTestFed(t)
	agents := dkgCluster(t, f, 4, nil)
	ctx := context.Background()
	a := agents[1]
	for _, tc := range []struct {
		name string
		cfg  dkg.Config
		from string
		want string
	}{
		{"stranger participant", dkgConfig(2, agents[0], agents[1]), "node-0", ""},
		{"not named", dkgConfig(2, agents[0], agents[2]), "node-0", "this node is not named"},
		{"caller not named", dkgConfig(2, agents[1], agents[2]), "node-3", "node-3 is not named"},
		{"over", dkgConfig(2, agents[1], agents[2]), "node-2", "ended at"},
		{"far ahead", dkgConfig(2, agents[1], agents[2]), "node-2", "more than 1m0s from now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Start, cfg.PhaseTimeout = time.Now(), time.Minute
			switch tc.name {
			case "over":
				cfg.Start = time.Now().Add(-5 * time.Minute)
			case "far ahead":
				cfg.Start = time.Now().Add(2 * time.Minute)
			}
			if tc.name == "stranger participant" {
				cfg.Participants = append(cfg.Participants, dkg.Participant{NodeID: "node-9", Index: 9})
				tc.want = "node-9 is not an enrolled member"
			}
			_, err := a.joinSession(cfg, tc.from)
			if !errors.Is(err, ErrDKGRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrDKGRefused mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := a.StartDKG(ctx, dkgConfig(2, agents[0], agents[2])); !errors.Is(err, ErrDKGRefused) {
		t.Fatalf("StartDKG not naming self: %v", err)
	}

	// A record whose issuers are node-1, node-2, node-3.
	ks, _ := localDKG(t, 2, 3)
	if err := a.SetKeyRecord(signedRecord(t, f.auth, ks, 1)); err != nil {
		t.Fatal(err)
	}
	rc := dkgConfig(2, agents[1:]...)
	rc.Start, rc.PhaseTimeout, rc.Epoch = time.Now(), time.Minute, ks.Epoch
	rc.Reshare = &dkg.ReshareFrom{T: ks.T, Holders: ks.Issuers, GroupKey: ks.GroupKey}
	if _, err := a.joinSession(rc, "node-2"); !errors.Is(err, ErrDKGRefused) || !strings.Contains(err.Error(), "not approved") {
		t.Fatalf("unapproved reshare: %v", err)
	}
	a.ApproveReshare(rc.ID())
	// Approved, it goes as far as loading its share (it has none here).
	if _, err := a.joinSession(rc, "node-2"); !errors.Is(err, ErrNoShare) {
		t.Fatalf("approved reshare without a share: %v", err)
	}
	other, _ := localDKG(t, 2, 3)
	fake := rc
	fake.Reshare = &dkg.ReshareFrom{T: other.T, Holders: other.Issuers, GroupKey: other.GroupKey}
	a.ApproveReshare(fake.ID())
	if _, err := a.joinSession(fake, "node-2"); !errors.Is(err, ErrDKGRefused) || !strings.Contains(err.Error(), "does not match the key record") {
		t.Fatalf("reshare of another key: %v", err)
	}
}

// secretEncodings are the ways k could appear in a file: raw (both byte
// orders), hex (both cases) and base64 (every alphabet, padded or not).
func secretEncodings(t *testing.T, k group.Scalar) [][]byte {
	t.Helper()
	raw, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(raw)
	slices.Reverse(rev)
	var forms [][]byte
	for _, r := range [][]byte{raw, rev} {
		h := hex.EncodeToString(r)
		forms = append(forms, r, []byte(h), []byte(strings.ToUpper(h)),
			[]byte(base64.StdEncoding.EncodeToString(r)), []byte(base64.RawStdEncoding.EncodeToString(r)),
			[]byte(base64.URLEncoding.EncodeToString(r)), []byte(base64.RawURLEncoding.EncodeToString(r)))
	}
	return forms
}

// TestDKGSessionBound: a node keeps at most MaxDKGSessions sessions; a
// running one is never dropped, a finished one makes room for the next.
func TestDKGSessionBound(t *testing.T) {
	f := newTestFed(t)
	agents := dkgCluster(t, f, 2, map[int]func(*Agent){
		0: func(a *Agent) { a.cfg.MaxDKGSessions, a.cfg.DKGPhaseTimeout = 1, time.Second },
		1: func(a *Agent) { a.dkgOutFilter = func(dkg.Message) bool { return false } }, // silent
	})
	ctx := context.Background()
	first, err := agents[0].StartDKG(ctx, dkgConfig(2, agents...))
	if err != nil {
		t.Fatal(err)
	}
	next := dkgConfig(2, agents...)
	next.Epoch++
	if _, err := agents[0].StartDKG(ctx, next); !errors.Is(err, ErrDKGRefused) {
		t.Fatalf("a second session while the first runs: %v", err)
	}
	testutil.Eventually(t, convergeTimeout, func() error {
		_, err := agents[0].StartDKG(ctx, next)
		return err
	})
	if _, ok := agents[0].DKGStatus(first); ok {
		t.Fatal("the finished session was kept beyond the bound")
	}
}

// TestKeyRecordsAtStart: records in the data directory (what a running node
// persisted) and in Config.KeyRecords are in force from NewAgent on, the
// newest per (purpose, epoch); a record that does not verify refuses the
// config.
func TestKeyRecordsAtStart(t *testing.T) {
	f := newTestFed(t)
	ks, _ := localDKG(t, 2, 3)
	dir := t.TempDir()
	if err := writeKeyRecords(filepath.Join(dir, KeyRecordsFile), []*KeyRecord{signedRecord(t, f.auth, ks, 4)}, true); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(f.creds(t, "node-0"), dir)
	cfg.KeyRecords = []*KeyRecord{signedRecord(t, f.auth, ks, 3)}
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := a.KeyRecords()
	a.Shutdown(context.Background())
	if len(got) != 1 || got[0].Serial != 4 {
		t.Fatalf("records at start: %v", got)
	}
	forged := *signedRecord(t, f.auth, ks, 5)
	forged.T = 3
	cfg.KeyRecords = []*KeyRecord{&forged}
	if _, err := NewAgent(cfg); !errors.Is(err, ErrDescriptorForged) {
		t.Fatalf("forged record in the config: %v", err)
	}
}

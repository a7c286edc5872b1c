package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/federation/dkg"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/admin"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestKeyRotation rotates the safeguarding key on six real agents (the
// demo's five, one shielded, and another agency; 3 issuers, t = 2). Records are held at
// several nodes under epoch 1. Epoch 2 is made by a DKG among the issuers
// and its record adopted; each node's background pass publishes its
// records under it. Throughout, a reader polls locate for every person and
// always finds every holder (under the old epoch, the new one or both).
// Then epoch 1 is retired (a higher serial with RetireAt passed): every
// node withdraws its old entries with the stored keys, so the old lookup
// keys hold no live entry in any replica, only epoch-2 entries remain, and
// the issuers' epoch-1 share files are gone.
func TestKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	ctx := context.Background()
	p := auth.TestArgon2Params
	log := slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dc := DemoConfig{Dir: t.TempDir(), People: 6, Argon2: &p, Logger: log}
	d, err := StartDemo(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	fifth, err := d.startAgency(ctx, dc, demoKeys{authority: d.authority, gossip: d.gossip}, DemoAgency{"bay-health-visiting", "Bay Health Visiting Team", "health-visiting", []string{"safeguarding"}},
		len(d.Stacks), []string{d.Stacks[0].Agent.GossipAddr()}, log.With("node", "bay-health-visiting"))
	if err != nil {
		t.Fatal(err)
	}
	url := func(s *Stack) string { return "http://" + s.Addr.String() }
	reader := d.Stacks[1] // riverside-school
	rid := reader.Node.Config().NodeID

	// Who holds whom: the demo's people, and the fifth agency's two records
	// (one person the others hold too, one only it holds).
	want := map[string][]string{}
	shielded := map[string]int{} // the shielded clinic's entries: not named, counted
	for _, pp := range d.People {
		want[pp.NHSNumber] = slices.Clone(pp.Holders)
		shielded[pp.NHSNumber] = len(pp.Shielded)
	}
	fid := fifth.Node.Config().NodeID
	extra := wasm.GenerateTestNumbers(77, 1)[0]
	// The fifth agency writes once it has the keys and the issuers know it
	// (its first write is otherwise queued, 202, until they do: a fresh
	// clone's CI run met that race).
	testutil.Eventually(t, 60*time.Second, func() error {
		if len(fifth.Agent.KeyRecords()) < 2 {
			return fmt.Errorf("the fifth agency has %d key records", len(fifth.Agent.KeyRecords()))
		}
		for _, s := range d.Stacks { // the fifth among them (startAgency adds it)
			alive := 0
			for _, m := range s.Agent.Members() {
				if m.Alive {
					alive++
				}
			}
			if alive < len(d.Stacks)-1 {
				return fmt.Errorf("%s sees %d other members alive, want %d", s.Node.Config().NodeID, alive, len(d.Stacks)-1)
			}
		}
		return nil
	})
	for i, num := range []string{d.People[0].NHSNumber, extra} {
		st, body := call(t, "POST", url(fifth)+"/v1/records", d.Tokens[fid], fmt.Sprintf(`{"localId":"bay-%d","nhsNumber":"%s"}`, i, num))
		if st != 201 {
			t.Fatalf("fifth agency's record: %d %s", st, body)
		}
		want[num] = append(want[num], fid)
	}

	// found checks, for every person, that the reader's locate lists every
	// other holder (and selfHolds for its own); it returns the lookup keys.
	client := &http.Client{Timeout: 20 * time.Second}
	locate := func(num string) (node.LocateResult, error) {
		req, _ := http.NewRequest("POST", url(reader)+"/v1/locate", strings.NewReader(fmt.Sprintf(`{"nhsNumber":"%s","purpose":"safeguarding"}`, num)))
		req.Header.Set("Authorization", "Bearer "+d.PractitionerTokens[rid])
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return node.LocateResult{}, err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var lr node.LocateResult
		if err := json.Unmarshal(b, &lr); err != nil || res.StatusCode != 200 {
			return lr, fmt.Errorf("locate: %d %s", res.StatusCode, b)
		}
		return lr, nil
	}
	found := func() error {
		for num, hs := range want {
			lr, err := locate(num)
			if err != nil {
				return err
			}
			for _, h := range hs {
				if h == rid {
					if !lr.SelfHolds {
						return fmt.Errorf("the reader does not see its own record (%d lookup keys)", len(lr.LookupKeys))
					}
					continue
				}
				if !slices.ContainsFunc(lr.Holders, func(v node.HolderView) bool { return v.NodeID == h }) {
					return fmt.Errorf("%s not found among %d holders (%d lookup keys)", h, len(lr.Holders), len(lr.LookupKeys))
				}
			}
		}
		return nil
	}
	testutil.Eventually(t, 60*time.Second, found)
	oldKeys := map[string]string{}
	for num := range want {
		lr, err := locate(num)
		if err != nil || len(lr.LookupKeys) != 1 || lr.LookupKeys[0].Epoch != 1 {
			t.Fatalf("before the rotation: %+v %v", lr.LookupKeys, err)
		}
		oldKeys[num] = lr.LookupKey
	}

	// The reader polls every person until the end: never a holder missing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var misses []string
	polls := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Paced (a poll of every person at most every 100 ms), to stay
		// within the practitioner's rate limit on a fast machine.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			err := found()
			mu.Lock()
			polls++
			if err != nil {
				misses = append(misses, err.Error())
			}
			mu.Unlock()
		}
	}()
	stopPolling := func() {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if polls == 0 || len(misses) > 0 {
			t.Fatalf("%d polls; a holder went missing %d times, first: %v", polls, len(misses), misses)
		}
		t.Logf("%d polls of every person during the rotation, none missed a holder", polls)
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	// Epoch 2, by DKG among the issuers; the authority signs its record.
	issuer := d.Stacks[0]
	var parts []dkg.Participant
	for i, id := range DemoIssuers {
		parts = append(parts, dkg.Participant{NodeID: id, Index: uint16(i + 1)})
	}
	start := time.Now()
	sid, err := issuer.Agent.StartDKG(ctx, dkg.Config{Purpose: "safeguarding", Epoch: 2, T: DemoThreshold, Participants: parts, Start: start, PhaseTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var st federation.DKGStatus
	testutil.Eventually(t, 60*time.Second, func() error {
		st, _ = issuer.Agent.DKGStatus(sid)
		if st.Phase < dkg.PhaseDone {
			return fmt.Errorf("DKG at %v", st.Phase)
		}
		return nil
	})
	if st.Phase != dkg.PhaseDone || st.Err != "" {
		t.Fatalf("epoch 2 DKG: %+v", st)
	}
	ks, err := federation.LoadDKGResult(st.ResultPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := federation.KeyRecordFromKeySet(ks)
	rec.Serial, rec.NotBefore = 1, start.Add(-time.Minute)
	signed, err := d.authority.SignKeyRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := issuer.Agent.SetKeyRecord(signed); err != nil {
		t.Fatal(err)
	}
	stacks := d.Stacks // the fifth among them (startAgency adds it)
	// pending reads a node's signpost_rotation_pending series (-1: none).
	pending := func(s *Stack, epoch, action string) float64 {
		st, body := call(t, "GET", url(s)+"/metrics", d.Tokens[s.Node.Config().NodeID], "")
		if st != 200 {
			t.Fatalf("metrics: %d", st)
		}
		series := fmt.Sprintf(`signpost_rotation_pending{action="%s",epoch="%s",purpose="safeguarding"} `, action, epoch)
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, series); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f
			}
		}
		return -1
	}
	// Every node notices the new key on its own (within the publisher's
	// key check) and passes over its records.
	testutil.Eventually(t, 120*time.Second, func() error {
		for _, s := range stacks {
			if v := pending(s, "2", "publish"); v != 0 {
				return fmt.Errorf("%s: %v records still to publish under epoch 2", s.Node.Config().NodeID, v)
			}
		}
		return nil
	})
	// The operator's command shows the rotation and its work left.
	t.Setenv("SIGNPOST_TOKEN", d.Tokens[issuer.Node.Config().NodeID])
	var out, errb bytes.Buffer
	if code := admin.KeysMain(ctx, []string{"key-records", "list", "--node", url(issuer)}, nil, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "a key rotation is under way") || !strings.Contains(out.String(), "safeguarding: 0 record(s) to publish under epoch 2") {
		t.Fatalf("key-records list during the overlap: exit %d\n%s%s", code, out.String(), errb.String())
	}
	// Every entry is now under both keys, in every replica.
	for num, hs := range want {
		lr, err := locate(num)
		if err != nil || len(lr.LookupKeys) != 2 || lr.LookupKeys[0].Epoch != 2 || lr.LookupKeys[1].LookupKey != oldKeys[num] {
			t.Fatalf("overlap: %+v %v", lr.LookupKeys, err)
		}
		for _, s := range stacks {
			for _, k := range lr.LookupKeys {
				testutil.Eventually(t, 30*time.Second, func() error {
					if n := entries(t, s, d, k.LookupKey); n != len(hs)+shielded[num] {
						return fmt.Errorf("%s holds %d entries under epoch %d, want %d", s.Node.Config().NodeID, n, k.Epoch, len(hs)+shielded[num])
					}
					return nil
				})
			}
		}
	}

	// Retire epoch 1: a higher serial whose RetireAt has passed.
	old, ok := issuer.Agent.KeyRecord("safeguarding", 1)
	if !ok {
		t.Fatal("no epoch 1 record")
	}
	retired := *old
	retired.Serial, retired.RetireAt = old.Serial+1, time.Now().Add(-time.Second)
	signedRetired, err := d.authority.SignKeyRecord(retired)
	if err != nil {
		t.Fatal(err)
	}
	if err := issuer.Agent.SetKeyRecord(signedRetired); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 120*time.Second, func() error {
		for _, s := range stacks {
			if v := pending(s, "1", "withdraw"); v > 0 {
				return fmt.Errorf("%s: %v records still to withdraw under epoch 1", s.Node.Config().NodeID, v)
			}
			if v := pending(s, "1", "withdraw"); v < 0 && pending(s, "2", "publish") != 0 {
				return fmt.Errorf("%s: not settled", s.Node.Config().NodeID)
			}
		}
		// Every replica: the old lookup keys hold no live entry.
		for num, k := range oldKeys {
			for _, s := range stacks {
				if n := entries(t, s, d, k); n != 0 {
					return fmt.Errorf("%s still holds %d entries under %s's old key", s.Node.Config().NodeID, n, num)
				}
			}
		}
		return nil
	})
	stopPolling()
	for num, hs := range want {
		lr, err := locate(num)
		if err != nil || len(lr.LookupKeys) != 1 || lr.LookupKeys[0].Epoch != 2 {
			t.Fatalf("after retirement: %+v %v", lr.LookupKeys, err)
		}
		for _, s := range stacks {
			if n := entries(t, s, d, lr.LookupKey); n != len(hs)+shielded[num] {
				t.Fatalf("%s holds %d entries under the new key, want %d", s.Node.Config().NodeID, n, len(hs)+shielded[num])
			}
		}
	}
	// The issuers' epoch-1 shares of the key are gone; epoch 2's and the
	// other purpose's stay.
	for _, id := range DemoIssuers {
		i := slices.IndexFunc(stacks, func(s *Stack) bool { return s.Node.Config().NodeID == id })
		own, ok := stacks[i].Agent.DKGStatus(sid)
		if !ok || own.SharePath == "" {
			t.Fatalf("%s has no epoch-2 share: %+v", id, own)
		}
		dir := filepath.Dir(own.SharePath)
		if m, _ := filepath.Glob(filepath.Join(dir, "direct-care.1.*.share")); len(m) != 1 {
			t.Fatalf("%s has %d direct-care shares (not rotated), want 1", id, len(m))
		}
		testutil.Eventually(t, 60*time.Second, func() error {
			if m, _ := filepath.Glob(filepath.Join(dir, "safeguarding.1.*.share")); len(m) != 0 {
				return fmt.Errorf("%s still has %d epoch-1 share files", id, len(m))
			}
			return nil
		})
		if m, _ := filepath.Glob(filepath.Join(dir, "safeguarding.2.*.share")); len(m) != 1 {
			t.Fatalf("%s has %d epoch-2 share files, want 1", id, len(m))
		}
	}
}

// entries is how many live entries s's replica holds under a lookup key.
func entries(t *testing.T, s *Stack, d *Demo, key string) int {
	t.Helper()
	st, body := call(t, "POST", "http://"+s.Addr.String()+"/v1/lookup", d.PractitionerTokens[s.Node.Config().NodeID], `{"lookupKey":"`+key+`","purpose":"safeguarding"}`)
	var lr struct {
		Entries []string `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &lr); err != nil || st != 200 {
		t.Fatalf("lookup at %s: %d %s", s.Node.Config().NodeID, st, body)
	}
	return len(lr.Entries)
}

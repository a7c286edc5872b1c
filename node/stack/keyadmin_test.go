package stack

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/node/admin"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestOperatorMakesAKey is the operator's whole path to a new token key,
// through the commands, on the demo's real nodes: start a DKG among the
// three issuers at one node, follow it to the end, fetch the public result,
// have the (offline) authority sign it, add the signed record at one node,
// and see it in force at another.
func TestOperatorMakesAKey(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 2, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	csc, ed := d.Stacks[0], d.Stacks[3]
	url := func(s *Stack) string { return "http://" + s.Addr.String() }
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := admin.KeysMain(context.Background(), args, nil, &out, &errb); code != want {
			t.Fatalf("signpost federation %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	t.Setenv("SIGNPOST_TOKEN", d.Tokens[csc.Node.Config().NodeID])

	out := run(0, "dkg", "start", "--node", url(csc), "--purpose", "direct-care", "--epoch", "7", "--t", "2",
		"--issuers", strings.Join(DemoIssuers, ","))
	session := regexp.MustCompile(`session ([0-9a-f]{64})`).FindStringSubmatch(out)
	if session == nil {
		t.Fatalf("no session in %q", out)
	}
	testutil.Eventually(t, 60*time.Second, func() error {
		if st := run(0, "dkg", "status", "--node", url(csc)); !strings.Contains(st, session[1]+"  direct-care epoch 7, 2 of 3: done") {
			return fmt.Errorf("not done yet:\n%s", st)
		}
		return nil
	})
	result := filepath.Join(t.TempDir(), "result.pem")
	run(0, "dkg", "result", "--node", url(csc), "--out", result, session[1])

	// The authority's side, offline.
	ks, err := federation.LoadDKGResult(result)
	if err != nil {
		t.Fatal(err)
	}
	rec := federation.KeyRecordFromKeySet(ks)
	rec.Serial, rec.NotBefore = 100, time.Now().Add(-time.Minute).Truncate(time.Second)
	signed, err := d.authority.SignKeyRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	recFile := filepath.Join(t.TempDir(), "keyrecord.pem")
	if err := federation.WriteKeyRecords(recFile, []*federation.KeyRecord{signed}); err != nil {
		t.Fatal(err)
	}
	if out := run(0, "key-records", "add", "--node", url(csc), recFile); !strings.Contains(out, "1 key record(s) adopted") {
		t.Fatalf("add: %s", out)
	}
	// Spread: another node lists it, with the issuers' shares.
	t.Setenv("SIGNPOST_TOKEN", d.Tokens[ed.Node.Config().NodeID])
	testutil.Eventually(t, 30*time.Second, func() error {
		if out := run(0, "key-records", "list", "--node", url(ed)); !strings.Contains(out, "direct-care epoch 7: 2 of 3 — 1:northshire-csc, 2:harbour-gp, 3:city-ed (this node holds a share)") {
			return fmt.Errorf("not in force at city-ed yet:\n%s", out)
		}
		return nil
	})
	// A record whose signature does not verify is refused with the reason.
	forged := signed.Encode()
	forged[len(forged)-1] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, pem.EncodeToMemory(&pem.Block{Type: "SIGNPOST KEY RECORD", Bytes: forged}), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run(1, "key-records", "add", "--node", url(ed), bad); !strings.Contains(out, "key_admin_refused") {
		t.Fatalf("a forged record: %s", out)
	}
	// Without a token the command says what it needs.
	t.Setenv("SIGNPOST_TOKEN", "")
	if out := run(1, "dkg", "status", "--node", url(csc)); !strings.Contains(out, "needs an API token") {
		t.Fatalf("no token: %s", out)
	}
}

// TestOperatorReshares moves the demo's safeguarding key from
// {northshire-csc, harbour-gp, city-ed} to {northshire-csc, harbour-gp,
// riverside-school} through the operators' commands: started at one
// holder, approved at the others, signed offline, added. The key does not
// change, so nothing is published again and every lookup finds the same
// holders — even with harbour-gp stopped, now that the school holds a
// share; city-ed's operator erases its old share.
func TestOperatorReshares(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 4, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	csc, school, gp, ed := d.Stacks[0], d.Stacks[1], d.Stacks[2], d.Stacks[3]
	url := func(s *Stack) string { return "http://" + s.Addr.String() }
	as := func(s *Stack) { t.Setenv("SIGNPOST_TOKEN", d.Tokens[s.Node.Config().NodeID]) }
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := admin.KeysMain(context.Background(), args, nil, &out, &errb); code != want {
			t.Fatalf("signpost federation %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	person := d.People[0].NHSNumber
	holders := func() string {
		t.Helper()
		st, body := call(t, "POST", url(school)+"/v1/locate", d.PractitionerTokens[school.Node.Config().NodeID],
			`{"nhsNumber":"`+person+`","purpose":"safeguarding"}`)
		if st != 200 {
			t.Fatalf("locate: %d %s", st, body)
		}
		return regexp.MustCompile(`"lookupKey":"[^"]*",?`).ReplaceAllString(body, "")
	}
	before := holders()

	as(csc)
	newSet := "northshire-csc,harbour-gp,riverside-school"
	out := run(0, "dkg", "reshare", "--node", url(csc), "--purpose", "safeguarding", "--epoch", "1", "--t", "2", "--issuers", newSet)
	session := regexp.MustCompile(`session ([0-9a-f]{64})`).FindStringSubmatch(out)
	if session == nil {
		t.Fatalf("no session in %q", out)
	}
	for _, s := range []*Stack{gp, ed} {
		as(s)
		run(0, "dkg", "approve", "--node", url(s), session[1])
	}
	as(csc)
	testutil.Eventually(t, 90*time.Second, func() error {
		if st := run(0, "dkg", "status", "--node", url(csc)); !strings.Contains(st, session[1]+"  safeguarding epoch 1, 2 of 3: done") {
			return fmt.Errorf("not done yet:\n%s", st)
		}
		return nil
	})
	result := filepath.Join(t.TempDir(), "result.pem")
	run(0, "dkg", "result", "--node", url(csc), "--out", result, session[1])
	ks, err := federation.LoadDKGResult(result)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := csc.Agent.KeyRecord("safeguarding", 1)
	rec := federation.KeyRecordFromKeySet(ks)
	rec.Serial, rec.NotBefore = old.Serial+100, old.NotBefore
	if !bytes.Equal(rec.GroupKey, old.GroupKey) {
		t.Fatal("the reshare changed the group key")
	}
	signed, err := d.authority.SignKeyRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	recFile := filepath.Join(t.TempDir(), "keyrecord.pem")
	if err := federation.WriteKeyRecords(recFile, []*federation.KeyRecord{signed}); err != nil {
		t.Fatal(err)
	}
	run(0, "key-records", "add", "--node", url(csc), recFile)
	as(school)
	testutil.Eventually(t, 30*time.Second, func() error {
		if out := run(0, "key-records", "list", "--node", url(school)); !strings.Contains(out, "safeguarding epoch 1: 2 of 3 — 1:northshire-csc, 2:harbour-gp, 3:riverside-school (this node holds a share)") {
			return fmt.Errorf("the reshared record is not in force at the school yet:\n%s", out)
		}
		return nil
	})
	// city-ed erases its old share once the new record is in force there
	// (before, the record in force still names that share).
	as(ed)
	testutil.Eventually(t, 30*time.Second, func() error {
		if out := run(0, "key-records", "list", "--node", url(ed)); !strings.Contains(out, "safeguarding epoch 1: 2 of 3 — 1:northshire-csc, 2:harbour-gp, 3:riverside-school\n") {
			return fmt.Errorf("the reshared record is not in force at city-ed yet:\n%s", out)
		}
		return nil
	})
	if out := run(0, "dkg", "erase-old", "--node", url(ed), "--purpose", "safeguarding", "--epoch", "1"); !strings.Contains(out, "1 old share file(s) erased") {
		t.Fatalf("erase at city-ed: %s", out)
	}
	// The same holders, with one of the new issuers stopped: the school's
	// new share and northshire-csc's make the same tokens.
	if err := gp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		if after := holders(); after != before {
			return fmt.Errorf("holders changed:\nbefore %s\nafter  %s", before, after)
		}
		return nil
	})
}

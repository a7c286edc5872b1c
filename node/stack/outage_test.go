package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestIssuerOutageQueuesWrites runs the demo's four real nodes, whose
// tokens come from 2 of 3 issuers (northshire-csc, harbour-gp, city-ed).
// With one issuer stopped, writing, locating and looking up work as usual.
// With two stopped, a locate answers 503 issuers_unavailable saying how
// many answered; a record written at the school is stored and answered
// 202 with "published": false, and the school stays ready, saying in
// /readyz that the issuers are unavailable. Once one issuer is back
// (restarted on its data), the school publishes the record on its own and
// another node finds it.
func TestIssuerOutageQueuesWrites(t *testing.T) {
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
	reader, writer, gp, ed := d.Stacks[0], d.Stacks[1], d.Stacks[2], d.Stacks[3]
	url := func(s *Stack) string { return "http://" + s.Addr.String() }
	wid, rid := writer.Node.Config().NodeID, reader.Node.Config().NodeID
	readyz := func() node.Readiness {
		t.Helper()
		st, body := call(t, "GET", url(writer)+"/readyz", "", "")
		var r node.Readiness
		if err := json.Unmarshal([]byte(body), &r); err != nil || st != 200 {
			t.Fatalf("readyz: %d %s", st, body)
		}
		return r
	}
	type answer struct {
		Published bool `json:"published"`
		Queued    int  `json:"queued"`
	}
	write := func(localID, num string) (int, answer, string) {
		t.Helper()
		st, body := call(t, "POST", url(writer)+"/v1/records", d.Tokens[wid], fmt.Sprintf(`{"localId":"%s","nhsNumber":"%s"}`, localID, num))
		var ans answer
		json.Unmarshal([]byte(body), &ans)
		return st, ans, body
	}
	// finds reports whether the reader's locate lists the writer.
	finds := func(num string) error {
		st, body := call(t, "POST", url(reader)+"/v1/locate", d.PractitionerTokens[rid], fmt.Sprintf(`{"nhsNumber":"%s","purpose":"safeguarding"}`, num))
		var res node.LocateResult
		if err := json.Unmarshal([]byte(body), &res); err != nil || st != 200 {
			return fmt.Errorf("locate: %d %s", st, body)
		}
		for _, h := range res.Holders {
			if h.NodeID == wid {
				return nil
			}
		}
		return errors.New("the reader does not find the writer's record yet")
	}
	nums := wasm.GenerateTestNumbers(99, 2) // not among the demo's people (seed 1)

	// One issuer of three down: nothing changes for anyone.
	if err := gp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, ans, body := write("outage-1", nums[0]); st != 201 || !ans.Published {
		t.Fatalf("write with one issuer down: %d %s, want 201 published", st, body)
	}
	testutil.Eventually(t, 30*time.Second, func() error { return finds(nums[0]) })

	// Two down: no new tokens; writes are kept and queued.
	if err := ed.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, body := call(t, "POST", url(reader)+"/v1/locate", d.PractitionerTokens[rid], fmt.Sprintf(`{"nhsNumber":"%s","purpose":"safeguarding"}`, nums[0]))
	if st != 503 || !strings.Contains(body, `"issuers_unavailable"`) || !strings.Contains(body, "only 1 of 3 token issuers answered and 2 are needed") {
		t.Fatalf("locate with two issuers down: %d %s", st, body)
	}
	if st, ans, body := write("outage-2", nums[1]); st != 202 || ans.Published || ans.Queued != 1 {
		t.Fatalf("write with two issuers down: %d %s, want 202 published false queued 1", st, body)
	}
	// At least the queued write waits (an item the background pass queued
	// before the outage, and has not yet seen through, may wait with it).
	if r := readyz(); !r.Ready || r.Outbox < 1 || !slices.Contains(r.Degraded, node.DegradedIssuer) {
		t.Fatalf("readyz with two issuers down: %+v", r)
	}

	// One back: 2 of 3 again; the queued record goes out by itself.
	cfg := ed.config
	cfg.Join = []string{writer.Agent.GossipAddr()}
	back, err := StartStack(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart city-ed: %v", err)
	}
	d.Stacks[3] = back // the demo's Shutdown stops it
	testutil.Eventually(t, 90*time.Second, func() error {
		if r := readyz(); r.Outbox != 0 || len(r.Degraded) != 0 {
			return fmt.Errorf("the writer still has %d queued (%v)", r.Outbox, r.Degraded)
		}
		return nil
	})
	testutil.Eventually(t, 30*time.Second, func() error { return finds(nums[1]) })
}

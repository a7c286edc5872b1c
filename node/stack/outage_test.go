package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestIssuerOutageQueuesWrites runs four real nodes and stops the issuer.
// Another node stays ready, and says in /readyz that the issuer is
// unavailable; a record written there is stored and answered 202 with
// "published": false. Once the issuer is back (restarted on its data), the
// node publishes it on its own, and a third node finds it.
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
	issuer, writer, reader := d.Stacks[0], d.Stacks[1], d.Stacks[2]
	url := func(s *Stack) string { return "http://" + s.Addr.String() }
	wid := writer.Node.Config().NodeID
	readyz := func() node.Readiness {
		t.Helper()
		st, body := call(t, "GET", url(writer)+"/readyz", "", "")
		var r node.Readiness
		if err := json.Unmarshal([]byte(body), &r); err != nil || st != 200 {
			t.Fatalf("readyz: %d %s", st, body)
		}
		return r
	}

	if err := issuer.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	num := wasm.GenerateTestNumbers(99, 1)[0] // not among the demo's people (seed 1)
	st, body := call(t, "POST", url(writer)+"/v1/records", d.Tokens[wid], fmt.Sprintf(`{"localId":"outage-1","nhsNumber":"%s"}`, num))
	var ans struct {
		Published bool `json:"published"`
		Queued    int  `json:"queued"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil || st != 202 || ans.Published || ans.Queued != 1 {
		t.Fatalf("write with the issuer down: %d %s, want 202 published false queued 1", st, body)
	}
	if r := readyz(); !r.Ready || r.Outbox != 1 || !slices.Contains(r.Degraded, node.DegradedIssuer) {
		t.Fatalf("readyz with the issuer down: %+v", r)
	}

	cfg := issuer.config
	cfg.Join = []string{writer.Agent.GossipAddr()}
	back, err := StartStack(context.Background(), cfg)
	if err != nil {
		t.Fatalf("restart the issuer: %v", err)
	}
	d.Stacks[0] = back // the demo's Shutdown stops it
	testutil.Eventually(t, 90*time.Second, func() error {
		if r := readyz(); r.Outbox != 0 || len(r.Degraded) != 0 {
			return fmt.Errorf("the writer still has %d queued (%v)", r.Outbox, r.Degraded)
		}
		return nil
	})
	rid := reader.Node.Config().NodeID
	testutil.Eventually(t, 30*time.Second, func() error {
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
	})
}

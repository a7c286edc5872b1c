package stack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/admin"
	"github.com/signpost-federation/signpost/node/internal/audit"
	"github.com/signpost-federation/signpost/node/internal/auth"
	"github.com/signpost-federation/signpost/wasm/testutil"
)

// auditVerify runs `signpost audit verify` with an auditor token in the
// environment, as an operator would.
func auditVerify(t *testing.T, token string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("SIGNPOST_TOKEN", token)
	var out, errb bytes.Buffer
	code := admin.AuditMain(context.Background(), append([]string{"verify"}, args...), nil, &out, &errb)
	return code, out.String(), errb.String()
}

// copyLog copies the audit log of dataDir and its public key into a new
// directory, keeping the first keep lines (all if keep < 0), without the
// saved head: what someone who cut the log's tail and removed the head file
// leaves behind.
func copyLog(t *testing.T, dataDir string, keep int) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dataDir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if keep >= 0 {
		ls := bytes.SplitAfter(b, []byte("\n"))
		b = bytes.Join(ls[:keep], nil)
	}
	os.WriteFile(filepath.Join(dir, audit.FileName), b, 0o600)
	pub, _ := os.ReadFile(filepath.Join(dataDir, audit.PublicKeyFileName))
	os.WriteFile(filepath.Join(dir, audit.PublicKeyFileName), pub, 0o644)
	return dir
}

// TestAuditWitnessedOnRealAgents runs the demo's real nodes: each offers its
// signed audit head to the others over the mutually authenticated peer
// transport, and they keep it. Then, on one node's log:
//   - cutting lines from the end (and removing its saved head) passes
//     `audit verify` on its own but fails `--witnessed`;
//   - a fork — an event rewritten and every line re-signed with the node's
//     own key, with a fresh head file — passes `audit verify` too, and fails
//     `--witnessed`;
//
// whether the heads are fetched from the node itself (what the other
// members hold for it) or from another member (what it holds).
func TestAuditWitnessedOnRealAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	p := auth.TestArgon2Params
	d, err := StartDemo(context.Background(), DemoConfig{Dir: t.TempDir(), People: 8, Argon2: &p,
		Logger: slog.New(slog.NewTextHandler(testLogs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
		testutil.VerifyNone(t)
	}()
	url := func(i int) string { return "http://" + d.Stacks[i].Addr.String() }
	auditors := map[int]string{}
	for _, i := range []int{0, 1} {
		tok, _, err := d.Stacks[i].Auth.Store().AddToken("witness-test-auditor", auth.RoleAuditor)
		if err != nil {
			t.Fatal(err)
		}
		auditors[i] = tok
	}
	x := d.Stacks[1] // the node whose log is tampered with
	dataDir := x.Node.Config().DataDir

	// Every other member holds a head of x's log that covers what it had.
	// (Fetching the heads is itself audited, so the log keeps growing.)
	before := x.Audit.Head().Size
	var witnessed int
	testutil.Eventually(t, 30*time.Second, func() error {
		code, out, errs := auditVerify(t, auditors[1], "--data", dataDir, "--witnessed", url(1))
		if code != 0 {
			return fmt.Errorf("verify --witnessed: %d %s%s", code, out, errs)
		}
		witnessed = 0
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var who string
			var size uint64
			if n, _ := fmt.Sscanf(sc.Text(), "witnessed: %s holds size %d", &who, &size); n == 2 && size >= before {
				witnessed++
			}
		}
		if others := len(d.Stacks) - 1; witnessed != others {
			return fmt.Errorf("%d of %d members hold a head of size ≥ %d:\n%s", witnessed, others, before, out)
		}
		return nil
	})
	// The other member's view: node 0 comes to hold x's head as it is now
	// (nothing is audited at x meanwhile).
	var held uint64
	testutil.Eventually(t, 30*time.Second, func() error {
		held = heldFor(t, url(0), auditors[0], x.Node.Config().NodeID)
		if now := x.Audit.Head().Size; held != now {
			return fmt.Errorf("node 0 holds x's head of size %d, x's log has %d", held, now)
		}
		return nil
	})

	// A clean stop saves x's final head; the log passes on its own and
	// against every witness.
	if err := x.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := auditVerify(t, auditors[0], "--data", dataDir, "--witnessed", url(0)); code != 0 {
		t.Fatalf("intact log against node 0's heads: %d %s %s", code, out, errs)
	}

	// Truncation: the last lines and the head file removed.
	cut := copyLog(t, dataDir, int(held)-2)
	if code, out, errs := auditVerify(t, "", "--data", cut); code != 0 {
		t.Fatalf("the cut log should pass on its own (that is why witnesses exist): %d %s %s", code, out, errs)
	}
	code, _, errs := auditVerify(t, auditors[0], "--data", cut, "--witnessed", url(0))
	if code != 1 || !strings.Contains(errs, audit.ErrTruncated.Error()) {
		t.Fatalf("truncation against the witness: %d %s", code, errs)
	}

	// Fork: event 2 rewritten, every line re-signed with x's own key.
	fork := forkLog(t, dataDir, x)
	if code, out, errs := auditVerify(t, "", "--data", fork); code != 0 {
		t.Fatalf("the re-signed fork should pass on its own: %d %s %s", code, out, errs)
	}
	code, _, errs = auditVerify(t, auditors[0], "--data", fork, "--witnessed", url(0))
	if code != 1 || !strings.Contains(errs, "a fork") {
		t.Fatalf("fork against the witness: %d %s", code, errs)
	}

	// Live: x's own log cut (its head file removed too) and x restarted on
	// it. x starts (nothing in its data directory tells), but its next head
	// is smaller than what the others hold: they refuse it and keep both
	// signed heads as evidence, which --witnessed reports.
	b, _ := os.ReadFile(filepath.Join(dataDir, audit.FileName))
	ls := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(filepath.Join(dataDir, audit.FileName), bytes.Join(ls[:len(ls)-4], nil), 0o600)
	os.Remove(filepath.Join(dataDir, audit.HeadFileName))
	x2, err := StartStack(context.Background(), x.config)
	if err != nil {
		t.Fatalf("restart on the cut log: %v", err)
	}
	d.Stacks[1] = x2 // the demo's Shutdown stops it
	testutil.Eventually(t, 30*time.Second, func() error {
		if forks := forksFor(t, url(0), auditors[0], x.Node.Config().NodeID); forks == 0 {
			return errors.New("node 0 has not refused x's smaller head yet")
		}
		return nil
	})
	code, _, errs = auditVerify(t, auditors[0], "--data", dataDir, "--witnessed", url(0))
	if code != 1 || !strings.Contains(errs, "evidence of a fork") || !strings.Contains(errs, "smaller than the head held") {
		t.Fatalf("the restarted, cut log against the witness: %d %s", code, errs)
	}
}

// forksFor returns how many forks the node at base holds as evidence
// against node.
func forksFor(t *testing.T, base, token, node string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/audit/heads", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ans struct {
		Heads []audit.NodeHead `json:"heads"`
	}
	if err := json.NewDecoder(res.Body).Decode(&ans); err != nil {
		t.Fatal(err)
	}
	for _, h := range ans.Heads {
		if h.Node == node {
			return len(h.Forks)
		}
	}
	return 0
}

// heldFor returns the size of the head the node at base holds for node.
func heldFor(t *testing.T, base, token, node string) uint64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/audit/heads", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var ans struct {
		Heads []audit.NodeHead `json:"heads"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /v1/audit/heads: %d %s", res.StatusCode, b)
	}
	for _, h := range ans.Heads {
		if h.Node == node {
			if len(h.Forks) > 0 {
				t.Fatalf("fork evidence for an honest node: %+v", h.Forks)
			}
			return h.Size
		}
	}
	t.Fatalf("no head held for %s: %s", node, b)
	return 0
}

// forkLog writes, in a new data directory, x's log with event 2 rewritten
// and every line signed again with x's key (a head file too): a log only
// the holder of the node's key could make, consistent in itself.
func forkLog(t *testing.T, dataDir string, x *Stack) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, audit.FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyLog(t, dataDir, 0)
	os.Remove(filepath.Join(dir, audit.FileName))
	l, err := audit.Open(filepath.Join(dir, audit.FileName), audit.Config{Signer: x.config.Credentials.PrivateKey, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var ln struct {
			Event audit.Event `json:"event"`
		}
		if err := json.Unmarshal(line, &ln); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			ln.Event.Actor = "user:mallory"
		}
		if _, err := l.Append(ln.Event); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/leakscan"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// openRecordsIn opens the records store of a node's data directory as the
// node does, with its objection key (made if it has none yet).
func openRecordsIn(dir string) (*records.Store, error) {
	key, err := objectionKey(dir)
	if err != nil {
		return nil, err
	}
	return records.Open(filepath.Join(dir, "records.db"), key)
}

// noteObjectionSecrets registers n's objection key, and the markers of
// nums under it, with the leak scanner: no log line or answer of the run
// may hold them.
func noteObjectionSecrets(t *testing.T, n *testNode, nums ...string) (markers [][]byte) {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(n.cfg.DataDir, ObjectionKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leaks.NoteKey(leakscan.KindObjKey, key, "")
	for _, nhs := range nums {
		m := records.Marker(key, nhs)
		leaks.NoteKey(leakscan.KindMarker, m, "")
		markers = append(markers, m)
	}
	return markers
}

// objectionBody is an objection request naming nhs.
func objectionBody(nhs string) string { return `{"nhsNumber":"` + nhs + `"}` }

// An objection covers the person at this agency: their record is
// withdrawn, a later write of the person under another local id (single or
// imported) is stored and withheld, not published, and reported so; other
// people's records go on as before; withdrawing the objection publishes
// every record of the person the agency holds, and the other agency finds
// it again. Every step is audited, without the number or the marker.
func TestObjectionCoversPerson(t *testing.T) {
	fed := newFakeFed()
	aud := &countingAudit{}
	a := newTestNodeWith(t, fed, "a", nil, func(o *Options) { o.Audit = aud })
	b := newTestNode(t, fed, "b", nil)
	markers := noteObjectionSecrets(t, a, nhsA)
	nhsC := "9990000034"

	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"c1","nhsNumber":"`+nhsA+`"}`); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if got := holdersSeen(t, b, nhsA); len(got) != 1 {
		t.Fatalf("before the objection b finds %v, want [a]", got)
	}

	steps := []struct {
		name, method, path, body string
		status                   int
		want                     map[string]any // fields of the answer
		holders                  int            // agencies b then finds for nhsA
	}{
		{"object", "POST", "/v1/objections", objectionBody(nhsA), 201,
			map[string]any{"records": 1.0, "published": true, "queued": 0.0}, 0},
		{"object again", "POST", "/v1/objections", objectionBody("999 000 0018"), 200,
			map[string]any{"records": 1.0, "already": true}, 0},
		{"write under another id", "POST", "/v1/records", `{"localId":"c2","nhsNumber":"` + nhsA + `"}`, 201,
			map[string]any{"localId": "c2", "published": false, "queued": 0.0, "withheld": "objected"}, 0},
		{"retry of it", "POST", "/v1/records", `{"localId":"c2","nhsNumber":"` + nhsA + `"}`, 200,
			map[string]any{"published": false, "queued": 0.0, "withheld": "objected"}, 0},
		{"import under a third id", "POST", "/v1/records/import", "c3," + nhsA + "\nd1," + nhsC + "\n", 200,
			map[string]any{"imported": 1.0, "published": 1.0, "withheld": 1.0, "failed": 0.0,
				"withheldRows": []any{map[string]any{"line": 1.0, "localId": "c3", "code": "objected", "message": withheldMessage}}}, 0},
		{"withdraw", "POST", "/v1/objections/withdraw", objectionBody(nhsA), 200,
			map[string]any{"records": 3.0, "published": true, "queued": 0.0}, 1},
		{"withdraw again", "POST", "/v1/objections/withdraw", objectionBody(nhsA), 404,
			map[string]any{"error": map[string]any{"code": "not_found", "message": "no objection stands for this person"}}, 1},
		{"write after the withdrawal", "POST", "/v1/records", `{"localId":"c4","nhsNumber":"` + nhsA + `"}`, 201,
			map[string]any{"published": true}, 1},
	}
	for _, st := range steps {
		r := a.do(t, st.method, st.path, "op-token", st.body)
		var got map[string]any
		if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != st.status {
			t.Fatalf("%s: %d %s (%v), want %d", st.name, r.status, r.body, err, st.status)
		}
		for k, v := range st.want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Fatalf("%s: %s is %v, want %v (%s)", st.name, k, got[k], v, r.body)
			}
		}
		if h := holdersSeen(t, b, nhsA); len(h) != st.holders {
			t.Fatalf("%s: b finds %v for the person, want %d agencies", st.name, h, st.holders)
		}
		if h := holdersSeen(t, b, nhsC); st.name == "import under a third id" && len(h) != 1 {
			t.Fatalf("%s: the other person's row is not published: %v", st.name, h)
		}
	}
	// The person's four records are all held, and published again.
	for _, id := range []string{"c1", "c2", "c3", "c4"} {
		if r, err := a.records.Get(id); err != nil || r.Objected {
			t.Fatalf("%s: %v %v", id, r, err)
		}
	}

	var actions []string
	for _, e := range aud.all() {
		actions = append(actions, fmt.Sprintf("%s/%s/%d", e.Action, e.LocalID, e.Count))
		line, _ := json.Marshal(e)
		if bytes.Contains(line, []byte(nhsA)) || bytes.Contains(line, markers[0]) || bytes.Contains(line, []byte(fmt.Sprintf("%x", markers[0]))) {
			t.Fatalf("audit event %s names the person", line)
		}
	}
	want := []string{"record-create/c1/1", "objection//1", "objection//1", "record-withheld/c2/1", "record-withheld/c2/1",
		"import//1", "record-withheld//1", "objection-withdrawn//3", "record-create/c4/1"}
	if fmt.Sprint(actions) != fmt.Sprint(want) {
		t.Fatalf("audit %v,\nwant %v", actions, want)
	}
}

// Requests to object or withdraw are checked before anything is written:
// operators only, the number valid and in the body, nothing else in it.
func TestObjectionRequests(t *testing.T) {
	fed := newFakeFed()
	a := newTestNode(t, fed, "a", nil)
	tests := []struct {
		name, path, token, body string
		status                  int
		code                    string
	}{
		{"practitioner", "/v1/objections", "prac-token", objectionBody(nhsA), 403, "forbidden"},
		{"auditor withdraws", "/v1/objections/withdraw", "audit-token", objectionBody(nhsA), 403, "forbidden"},
		{"no credentials", "/v1/objections", "", objectionBody(nhsA), 401, "unauthenticated"},
		{"bad check digit", "/v1/objections", "op-token", objectionBody("9990000013"), 400, "invalid_nhs_number"},
		{"no number", "/v1/objections", "op-token", `{}`, 400, "invalid_nhs_number"},
		{"unknown field", "/v1/objections", "op-token", `{"nhsNumber":"` + nhsA + `","localId":"x"}`, 400, "bad_request"},
		{"number twice", "/v1/objections", "op-token", `{"nhsNumber":"` + nhsA + `","nhsNumber":"` + nhsB + `"}`, 400, "bad_request"},
		{"withdraw none", "/v1/objections/withdraw", "op-token", objectionBody(nhsA), 404, "not_found"},
		{"number in the path", "/v1/objections/" + nhsA, "op-token", "", 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, "POST", tc.path, tc.token, tc.body)
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %d %s, want %d %q", r.status, r.body, tc.status, tc.code)
			}
			if n, err := a.records.Objections(); err != nil || n != 0 {
				t.Fatalf("a refused request stored %d objections (%v)", n, err)
			}
		})
	}
}

// An objection made through one of the person's records outlives it: once
// the retention sweep deleted the record, a re-import of the person under
// another local id (CSV or single write) is stored withheld, and nothing
// of theirs is published again.
func TestObjectionOutlivesRetention(t *testing.T) {
	fed := newFakeFed()
	clock := newTestClock() // 2026-11-25 09:00 UTC
	aud := &countingAudit{}
	a := nodeWith(t, Options{Index: fed.index("a", "Agency a"), Now: clock.Now, Audit: aud}, nil)
	b := newTestNode(t, fed, "b", nil)
	noteObjectionSecrets(t, a, nhsA)
	mustImport(t, a, "old,"+nhsA+",,2026-11-26\n", 1)
	if r := a.do(t, "POST", "/v1/records/old/objection", "op-token", ""); r.status != 204 {
		t.Fatalf("objection: %d %s", r.status, r.body)
	}
	clock.Advance(48 * time.Hour)
	if n, _, err := a.sweepRetention(context.Background()); err != nil || n != 1 || a.count(t) != 0 {
		t.Fatalf("sweep: %d deleted, %d held (%v)", n, a.count(t), err)
	}
	live := fed.published()

	tests := []struct {
		name, path, body string
		status           int
	}{
		{"csv", "/v1/records/import", "new1," + nhsA + ",cin\n", 200},
		{"single", "/v1/records", `{"localId":"new2","nhsNumber":"` + nhsA + `"}`, 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, "POST", tc.path, "op-token", tc.body)
			if r.status != tc.status || !strings.Contains(r.body, `"objected"`) {
				t.Fatalf("re-import: %d %s, want %d naming the objection", r.status, r.body, tc.status)
			}
			if fed.published() != live || len(holdersSeen(t, b, nhsA)) != 0 {
				t.Fatalf("the person is published again: %d live entries, was %d", fed.published(), live)
			}
		})
	}
	if a.count(t) != 2 {
		t.Fatalf("%d records held, want both re-imports stored", a.count(t))
	}
}

// A record queued while the issuer was down, then objected, is never
// published: not by the background publisher once the issuer is back, and
// not by a restarted node's republication.
func TestObjectionBeatsQueuedPublication(t *testing.T) {
	fed := newFakeFed()
	clock := newTestClock()
	dir := t.TempDir()
	a := manualNode(t, Options{Index: fed.index("a", "Agency a"), Now: clock.Now}, func(c *Config) { c.DataDir = dir })
	noteObjectionSecrets(t, a, nhsA)
	a.tok.setFail(ErrIssuerUnavailable)
	if r := a.do(t, "POST", "/v1/records", "op-token", `{"localId":"q1","nhsNumber":"`+nhsA+`"}`); r.status != 202 {
		t.Fatalf("queued write: %d %s", r.status, r.body)
	}
	r := a.do(t, "POST", "/v1/objections", "op-token", objectionBody(nhsA))
	var ans objectionAnswer
	mustJSON(t, r.body, &ans)
	if r.status != 202 || ans.Records != 1 || ans.Queued != 1 || ans.Published {
		t.Fatalf("objection while the issuer is down: %d %s, want 202 with the withdrawal queued", r.status, r.body)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	a2 := manualNode(t, Options{Index: fed.index("a", "Agency a"), Now: clock.Now}, func(c *Config) { c.DataDir = dir })
	for range 3 {
		a2.pub.step(context.Background())
		clock.Advance(publishRetryMax)
	}
	if a2.records.OutboxLen() != 0 || fed.published() != 0 {
		t.Fatalf("after the restart: %d queued, %d live entries; want nothing published", a2.records.OutboxLen(), fed.published())
	}
	if rec, err := a2.records.Get("q1"); err != nil || !rec.Objected {
		t.Fatalf("the record: %v %v; want it held, objected", rec, err)
	}
}

// The objection key is made at first start, 0600, and kept: a node refuses
// to start on a key file others can read, of the wrong size, or not the
// one its records were made with.
func TestObjectionKeyFile(t *testing.T) {
	start := func(dir string) error {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.Agency, cfg.Category, cfg.DataDir = "a", "Agency a", "school", dir
		n, err := New(cfg, Options{Tokenizer: &fakeTokenizer{}, Index: newFakeFed().index("a", "Agency a"), Auth: tokens, Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
		if err == nil {
			n.Shutdown(context.Background())
		}
		return err
	}
	dir := t.TempDir()
	if err := start(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ObjectionKeyFile)
	st, err := os.Stat(path)
	if err != nil || st.Size() != records.MarkerKeySize || (runtime.GOOS != "windows" && st.Mode().Perm() != 0o600) {
		t.Fatalf("key file: %v %v", st, err)
	}
	key, _ := os.ReadFile(path)
	leaks.NoteKey(leakscan.KindObjKey, key, "")
	if err := start(dir); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, key) {
		t.Fatal("the key changed at the second start")
	}

	tests := []struct {
		name  string
		spoil func(path string)
		want  error
	}{
		{"world-readable", func(p string) { os.Chmod(p, 0o644) }, ErrUnsafePermissions},
		{"group-readable", func(p string) { os.Chmod(p, 0o640) }, ErrUnsafePermissions},
		{"short", func(p string) { os.WriteFile(p, key[:16], 0) }, nil},
		{"another key", func(p string) { os.WriteFile(p, bytes.Repeat([]byte{1}, records.MarkerKeySize), 0o600) }, records.ErrMarkerKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.want == ErrUnsafePermissions {
				t.Skip("no POSIX modes on Windows")
			}
			os.Remove(path)
			if err := os.WriteFile(path, key, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.spoil(path)
			err := start(dir)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("start: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), ObjectionKeyFile) {
				t.Fatalf("the error does not name the key file: %v", err)
			}
		})
	}
}

// A key rotation's pass publishes every record under the new key except
// those of a person whose objection stands.
func TestObjectionHoldsThroughRotation(t *testing.T) {
	fed := newFakeFed()
	dir := t.TempDir()
	cfg := func(c *Config) { c.DataDir = dir }
	a := manualNode(t, Options{Index: fed.index("a", "Agency a")}, cfg)
	noteObjectionSecrets(t, a, nhsA)
	mustImport(t, a, "p1,"+nhsA+"\np2,"+nhsB+"\n", 2)
	if r := a.do(t, "POST", "/v1/objections", "op-token", objectionBody(nhsA)); r.status != 201 {
		t.Fatalf("objection: %d %s", r.status, r.body)
	}
	a.srv.Close()
	a.Shutdown(context.Background())

	keys := soloKeyring("a")
	keys.epoch = 2
	b := manualNode(t, Options{Index: fed.index("a", "Agency a"), Keyring: keys}, cfg)
	for range 3 {
		b.pub.step(context.Background())
	}
	var republished []string
	b.records.ForEachPublished(func(id string, p records.Published) error {
		if p.Epoch == b.keyGeneration() {
			republished = append(republished, id)
		}
		return nil
	})
	if b.pub.backfill || fmt.Sprint(republished) != "[p2]" || fed.published() != len(b.cfg.Purposes) {
		t.Fatalf("after the rotation's pass: %v under the new key, %d live entries (pass going on: %v); want p2 alone",
			republished, fed.published(), b.pub.backfill)
	}
}

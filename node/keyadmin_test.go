package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeKeyAdmin records what the API asked of the federation.
type fakeKeyAdmin struct {
	started []string
	refuse  error
}

func (f *fakeKeyAdmin) StartDKG(_ context.Context, purpose string, epoch uint32, t int, issuers []string) (string, error) {
	if f.refuse != nil {
		return "", f.refuse
	}
	f.started = append(f.started, fmt.Sprintf("%s/%d/%d/%s", purpose, epoch, t, strings.Join(issuers, ",")))
	return strings.Repeat("ab", 32), nil
}

func (f *fakeKeyAdmin) DKGSessions() any {
	return []map[string]any{{"Session": strings.Repeat("ab", 32), "Phase": "done"}}
}

func (f *fakeKeyAdmin) DKGResult(session string) ([]byte, error) {
	if session != strings.Repeat("ab", 32) {
		return nil, fmt.Errorf("%w: no DKG session %s here", ErrKeyAdmin, session)
	}
	return []byte("-----BEGIN SIGNPOST DKG RESULT-----\n-----END SIGNPOST DKG RESULT-----\n"), nil
}

func (f *fakeKeyAdmin) StartReshare(ctx context.Context, purpose string, epoch uint32, t int, issuers []string) (string, error) {
	return f.StartDKG(ctx, "reshare:"+purpose, epoch, t, issuers)
}

func (f *fakeKeyAdmin) ApproveReshare(session string) error {
	f.started = append(f.started, "approve:"+session)
	return nil
}

func (f *fakeKeyAdmin) EraseOldShares(purpose string, epoch uint32) (int, error) {
	f.started = append(f.started, fmt.Sprintf("erase:%s/%d", purpose, epoch))
	return 1, nil
}

func (f *fakeKeyAdmin) AdoptKeyRecords(data []byte) (int, error) {
	if !strings.Contains(string(data), "SIGNPOST KEY RECORD") {
		return 0, fmt.Errorf("%w: the uploaded key records: no key record", ErrKeyAdmin)
	}
	return 1, nil
}

// TestKeyAdminRoutes: operators start DKGs, follow them, fetch results and
// adopt key records through the API; auditors may look, not act;
// practitioners may do neither; a refusal is the operator's 400 with the
// reason, and every start and adoption is audited.
func TestKeyAdminRoutes(t *testing.T) {
	ka, aud := &fakeKeyAdmin{}, &countingAudit{}
	a := newTestNodeWith(t, newFakeFed(), "a", nil, func(o *Options) { o.KeyAdmin, o.Audit = ka, aud })
	session := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code, contains                  string
	}{
		{"start", "POST", "/v1/federation/dkg", "op-token", `{"purpose":"safeguarding","epoch":2,"t":2,"issuers":["a","b","c"]}`, 202, "", session},
		{"start by a practitioner", "POST", "/v1/federation/dkg", "prac-token", `{"purpose":"safeguarding","epoch":2,"t":2,"issuers":["a","b","c"]}`, 403, "forbidden", ""},
		{"start by an auditor", "POST", "/v1/federation/dkg", "audit-token", `{"purpose":"safeguarding","epoch":2,"t":2,"issuers":["a","b","c"]}`, 403, "forbidden", ""},
		{"t above n", "POST", "/v1/federation/dkg", "op-token", `{"purpose":"safeguarding","epoch":2,"t":4,"issuers":["a","b","c"]}`, 400, "key_admin_refused", "threshold"},
		{"epoch 0", "POST", "/v1/federation/dkg", "op-token", `{"purpose":"safeguarding","epoch":0,"t":1,"issuers":["a"]}`, 400, "key_admin_refused", "epoch"},
		{"no issuers", "POST", "/v1/federation/dkg", "op-token", `{"purpose":"safeguarding","epoch":2,"t":1,"issuers":[]}`, 400, "key_admin_refused", ""},
		{"list", "GET", "/v1/federation/dkg", "audit-token", "", 200, "", `"Phase":"done"`},
		{"result", "GET", "/v1/federation/dkg/" + session + "/result", "op-token", "", 200, "", "SIGNPOST DKG RESULT"},
		{"result of another", "GET", "/v1/federation/dkg/" + strings.Repeat("cd", 32) + "/result", "op-token", "", 400, "key_admin_refused", "no DKG session"},
		{"result of a bad id", "GET", "/v1/federation/dkg/x/result", "op-token", "", 400, "key_admin_refused", "64 lowercase hex"},
		{"adopt", "POST", "/v1/federation/key-records", "op-token", `{"records":"-----BEGIN SIGNPOST KEY RECORD-----\n-----END SIGNPOST KEY RECORD-----\n"}`, 200, "", `"adopted":1`},
		{"adopt junk", "POST", "/v1/federation/key-records", "op-token", `{"records":"junk"}`, 400, "key_admin_refused", "no key record"},
		{"reshare", "POST", "/v1/federation/reshare", "op-token", `{"purpose":"safeguarding","epoch":1,"t":2,"issuers":["a","b","d"]}`, 202, "", session},
		{"reshare by an auditor", "POST", "/v1/federation/reshare", "audit-token", `{"purpose":"safeguarding","epoch":1,"t":2,"issuers":["a","b","d"]}`, 403, "forbidden", ""},
		{"approve", "POST", "/v1/federation/dkg/" + session + "/approve", "op-token", "", 204, "", ""},
		{"approve a bad id", "POST", "/v1/federation/dkg/x/approve", "op-token", "", 400, "key_admin_refused", "64 lowercase hex"},
		{"erase old shares", "POST", "/v1/federation/erase-old-shares", "op-token", `{"purpose":"safeguarding","epoch":1}`, 200, "", `"erased":1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do(t, tc.method, tc.path, tc.token, tc.body)
			if r.status != tc.status || (tc.code != "" && r.errCode() != tc.code) || !strings.Contains(r.body, tc.contains) {
				t.Fatalf("%d %s, want %d %s containing %q", r.status, r.body, tc.status, tc.code, tc.contains)
			}
		})
	}
	if want := []string{"safeguarding/2/2/a,b,c", "reshare:safeguarding/1/2/a,b,d", "approve:" + session, "erase:safeguarding/1"}; !slices.Equal(ka.started, want) {
		t.Fatalf("started %v", ka.started)
	}
	var starts, adopts int
	for _, e := range aud.all() {
		switch {
		case e.Action == "dkg-start" && e.Outcome == "ok" && e.Actor == "op" && e.Purpose == "safeguarding" && e.Count == 3:
			starts++
		case e.Action == "key-records" && e.Outcome == "ok" && e.Count == 1:
			adopts++
		}
	}
	if starts != 1 || adopts != 1 {
		t.Fatalf("audited %d starts and %d adoptions: %+v", starts, adopts, aud.all())
	}
	// A refusal from the federation is the operator's, with its reason.
	ka.refuse = fmt.Errorf("%w: harbour-gp is not a member", ErrKeyAdmin)
	r := a.do(t, "POST", "/v1/federation/dkg", "op-token", `{"purpose":"safeguarding","epoch":3,"t":1,"issuers":["harbour-gp"]}`)
	if r.status != 400 || r.errCode() != "key_admin_refused" || !strings.Contains(r.body, "not a member") {
		t.Fatalf("refused: %d %s", r.status, r.body)
	}
	// Without a federation the routes say so.
	b := newTestNode(t, newFakeFed(), "b", nil)
	if r := b.do(t, "GET", "/v1/federation/dkg", "op-token", ""); r.status != 503 || r.errCode() != "no_federation" {
		t.Fatalf("no federation: %d %s", r.status, r.body)
	}
}

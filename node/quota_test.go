package node

import (
	"strings"
	"testing"
	"time"
)

// TestDailyQuota: on an injected clock, a user's lookups (locate and lookup
// together) are refused past the daily quota with 429 quota_exceeded
// naming the reset (00:00 UTC) and Retry-After; the quota is per user,
// larger for a system caller (or the token's own), starts again at the next UTC day, and the
// operators' alert (audit line and metric) is raised once per user and
// day when the alert share is passed.
func TestDailyQuota(t *testing.T) {
	clock := newTestClock() // 2026-11-25 09:00 UTC
	aud := &countingAudit{}
	users := StaticTokens{
		"p1-token":  {Name: "user:p1", Role: RolePractitioner},
		"p2-token":  {Name: "user:p2", Role: RolePractitioner},
		"sys-token": {Name: "token:case-system", Role: RolePractitioner, System: true},
		"own-token": {Name: "token:nightly", Role: RolePractitioner, System: true, DailyLookups: 3},
	}
	a := newTestNodeWith(t, newFakeFed(), "a", func(c *Config) {
		c.UserRate, c.UserBurst = 1e6, 1e6
		c.DailyLookups, c.DailyTokenLookups, c.QuotaAlertShare = 10, 20, 0.5
	}, func(o *Options) { o.Now, o.Audit, o.Auth = clock.Now, aud, users })
	lookup := func(token string, i int) resp {
		t.Helper()
		if i%2 == 0 {
			return a.do(t, "POST", "/v1/lookup", token, `{"lookupKey":"AAAAAAAAAAAAAAAAAAAAAA","purpose":"safeguarding"}`)
		}
		return a.do(t, "POST", "/v1/locate", token, `{"nhsNumber":"`+nhsA+`","purpose":"safeguarding"}`)
	}
	alerts := func() (n int, last AuditEvent) {
		for _, e := range aud.all() {
			if e.Action == "quota-alert" {
				n, last = n+1, e
			}
		}
		return n, last
	}
	metric := func(want string) {
		t.Helper()
		if r := a.do(t, "GET", "/metrics", "", ""); !strings.Contains(r.body, want+"\n") {
			t.Fatalf("metrics lack %q", want)
		}
	}

	for i := range 10 {
		if r := lookup("p1-token", i); r.status != 200 {
			t.Fatalf("lookup %d: %d %s", i+1, r.status, r.body)
		}
		n, e := alerts()
		if want := map[bool]int{true: 1, false: 0}[i+1 > 5]; n != want {
			t.Fatalf("after %d lookups: %d alerts, want %d", i+1, n, want)
		}
		if n == 1 && (e.Actor != "user:p1" || e.Count != 6) {
			t.Fatalf("alert %+v", e)
		}
	}
	metric(`signpost_quota_alerts_total{kind="person"} 1`)
	for i := range 2 {
		r := lookup("p1-token", i)
		if r.status != 429 || r.errCode() != "quota_exceeded" || !strings.Contains(r.body, "2026-11-26T00:00:00Z") || r.header.Get("Retry-After") != "54000" {
			t.Fatalf("over the quota: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
		}
	}
	metric(`signpost_quota_refused_total{kind="person"} 2`)
	if n, _ := alerts(); n != 1 {
		t.Fatalf("%d alerts after refusals, want 1", n)
	}

	// Per user: another person has a full quota; a system its larger one.
	if r := lookup("p2-token", 0); r.status != 200 {
		t.Fatalf("another user: %d %s", r.status, r.body)
	}
	for i := range 20 {
		if r := lookup("sys-token", i); r.status != 200 {
			t.Fatalf("system lookup %d: %d %s", i+1, r.status, r.body)
		}
	}
	if r := lookup("sys-token", 0); r.status != 429 || r.errCode() != "quota_exceeded" {
		t.Fatalf("system over its quota: %d %s", r.status, r.body)
	}
	metric(`signpost_quota_alerts_total{kind="system"} 1`)
	// A token with its own quota (signpost user quota) has that one.
	for i := range 3 {
		if r := lookup("own-token", i); r.status != 200 {
			t.Fatalf("own-quota lookup %d: %d %s", i+1, r.status, r.body)
		}
	}
	if r := lookup("own-token", 0); r.status != 429 || !strings.Contains(r.body, "quota of 3 ") {
		t.Fatalf("own quota: %d %s", r.status, r.body)
	}

	// A second before midnight still refused; at midnight a new day.
	clock.Advance(15*time.Hour - time.Second)
	if r := lookup("p1-token", 0); r.status != 429 || r.header.Get("Retry-After") != "1" {
		t.Fatalf("23:59:59: %d %s", r.status, r.body)
	}
	clock.Advance(time.Second)
	for i := range 10 {
		if r := lookup("p1-token", i); r.status != 200 {
			t.Fatalf("next day, lookup %d: %d %s", i+1, r.status, r.body)
		}
	}
	if n, _ := alerts(); n != 4 { // p1 yesterday, the two systems, p1 today
		t.Fatalf("%d alerts, want 4", n)
	}
	if r := lookup("p1-token", 0); r.status != 429 || !strings.Contains(r.body, "2026-11-27T00:00:00Z") {
		t.Fatalf("next day over the quota: %d %s", r.status, r.body)
	}
}

package node

import (
	"slices"
	"testing"
)

// TestShieldedReadiness: a shielded node says, on /readyz, that its
// entries cannot be published while its broker is not a member (its writes
// wait in the outbox), and stops saying so once it is.
func TestShieldedReadiness(t *testing.T) {
	for _, tc := range []struct {
		name     string
		members  []string
		degraded bool
	}{
		{"broker not a member", []string{"gp"}, true},
		{"broker a member", []string{"gp", "hub"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fed := newFakeFed()
			n := manualNode(t, Options{Index: fed.index("clinic", "Bay Clinic"), Peers: memberPeers{stubPeers: stubPeers{}, members: tc.members}}, func(c *Config) {
				c.Shielded, c.Broker = true, "hub"
			})
			rd := readiness(t, n)
			if got := slices.Contains(rd.Degraded, DegradedBroker); got != tc.degraded || !rd.Ready {
				t.Fatalf("readyz %+v, want degraded by the broker %v", rd, tc.degraded)
			}
		})
	}
}

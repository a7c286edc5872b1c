package federation

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/signpost-federation/signpost/locator"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// gather returns reg's families by name.
func gather(t testing.TB, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the series of name whose labels include
// labels (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		}
		return 0, true
	}
	return 0, false
}

// TestCollector runs three agents, each with its own registry (as three
// nodes of one process, like the demo), spreads an entry, stops one node
// hard, cuts node-0 off, and checks that each registry shows the agent's
// own counters and memberlist's own series for that agent only: members by
// state, probes, the suspicion of the stopped node and the health score
// failed probes raise.
func TestCollector(t *testing.T) {
	f := newTestFed(t)
	agents := make([]*Agent, 3)
	regs := make([]*prometheus.Registry, 3)
	for i := range agents {
		regs[i] = prometheus.NewRegistry()
		agents[i] = startAgent(t, f.config(f.creds(t, fmt.Sprintf("node-%d", i)), ""), func(a *Agent) {
			a.faults = newFaultSet()
			c, err := a.Collector()
			if err != nil {
				t.Fatal(err)
			}
			// The replica's own collector sits beside it, as a node's
			// assembly registers both.
			regs[i].MustRegister(c, locator.NewCollector(a.Store()))
		})
		if i > 0 {
			if _, err := agents[i].Join([]string{agents[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitMembers(t, agents...)

	e, _ := testEntry(t, holderOf(t, agents[0].cfg.Credentials))
	publish(t, agents[0], e)
	testutil.Eventually(t, convergeTimeout, func() error {
		fams := gather(t, regs[1])
		if v, _ := value(fams, MetricEntriesApplied, "result", "accepted"); v < 1 {
			return fmt.Errorf("node-1 has applied %v entries from peers", v)
		}
		if v, _ := value(fams, locator.MetricAccepted); v < 1 {
			return fmt.Errorf("node-1's replica accepted %v entries", v)
		}
		return nil
	})
	fams0 := gather(t, regs[0])
	if v, _ := value(fams0, MetricMessagesSent, "class", "push"); v < 1 {
		t.Fatalf("node-0 sent %v push messages after publishing", v)
	}
	// The engine hears of every member that joins (PeerAlive).
	if v, _ := value(fams0, MetricRejoins); v < 2 {
		t.Fatalf("%s = %v on node-0, which saw two members join", MetricRejoins, v)
	}

	// node-2 stops without leaving: the others' probes fail and they
	// suspect it, then declare it dead.
	if err := agents[2].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, convergeTimeout, func() error {
		fams := gather(t, regs[0])
		if v, ok := value(fams, MetricMembers); !ok || v != 1 {
			return fmt.Errorf("%s = %v (present %v), want 1", MetricMembers, v, ok)
		}
		if v, _ := value(fams, "memberlist_msg_suspect", MetricNodeLabel, "node-0"); v < 1 {
			return fmt.Errorf("memberlist_msg_suspect = %v", v)
		}
		return nil
	})

	fams := gather(t, regs[0])
	for _, name := range []string{
		MetricGossipHealth, MetricOutbox, MetricInboundQueue, MetricPeerMessages, MetricAntiEntropySession, MetricBytesSent,
		MetricPulls, MetricPullRetries, MetricPullsAbandoned, MetricPullsRefused, MetricRejoinExchanges, MetricReannounced,
		"memberlist_node_instances", "memberlist_probeNode", "memberlist_msg_alive", "memberlist_udp_sent",
		locator.MetricEntries, locator.MetricRejected,
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("node-0's registry lacks %s", name)
		}
	}
	if v, ok := value(fams, "memberlist_node_instances", MetricNodeLabel, "node-0", "node_state", "alive"); !ok || v < 2 {
		t.Errorf("memberlist_node_instances{alive} = %v (present %v), want ≥ 2 (self and node-1)", v, ok)
	}
	// Each registry holds its own agent's memberlist series only.
	for i, reg := range regs[:2] {
		for name, mf := range gather(t, reg) {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == MetricNodeLabel && l.GetValue() != fmt.Sprintf("node-%d", i) {
						t.Errorf("node-%d's registry has %s of %s", i, name, l.GetValue())
					}
				}
			}
		}
	}

	// node-0 loses node-1 too: its probes now fail with no other member
	// to vouch that the network is fine, so memberlist lowers its own
	// health (awareness), which both its series and ours show.
	agents[0].faults.set([]string{"node-1"}, []string{agents[1].GossipAddr()})
	agents[1].faults.set([]string{"node-0"}, []string{agents[0].GossipAddr()})
	testutil.Eventually(t, convergeTimeout, func() error {
		fams := gather(t, regs[0])
		if v, _ := value(fams, MetricGossipHealth); v < 1 {
			return fmt.Errorf("%s = %v", MetricGossipHealth, v)
		}
		if v, _ := value(fams, "memberlist_health_score", MetricNodeLabel, "node-0"); v < 1 {
			return fmt.Errorf("memberlist_health_score = %v", v)
		}
		return nil
	})
}

// TestCollectorNotStarted: before Start the collector exports the counters
// that need no engine, and gathers without error.
func TestCollectorNotStarted(t *testing.T) {
	f := newTestFed(t)
	a, err := NewAgent(f.config(f.creds(t, "node-0"), ""))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	c, err := a.Collector()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams := gather(t, reg)
	if v, ok := value(fams, MetricPeerMessages, "result", "sent"); !ok || v != 0 {
		t.Fatalf("%s = %v (present %v)", MetricPeerMessages, v, ok)
	}
	if _, ok := fams[MetricAntiEntropySession]; ok {
		t.Fatalf("engine counters exported before Start")
	}
}

package federation

import (
	"context"
	"fmt"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// Metrics.
//
// Agent.Collector exports the counters the agent already keeps (Stats) at
// each scrape, as serf does: nothing is counted twice and the hot paths do
// not change. memberlist reports its own metrics through the process-wide
// go-metrics instance; the first Collector call installs a Prometheus sink
// there, and every agent labels its memberlist series node=<node id>, so
// that the agents of one process (the demo, tests) stay apart and each
// agent's Collector returns only its own.

// MetricNodeLabel is the label memberlist's series carry: the node id.
const MetricNodeLabel = "node"

// Names of the agent's own series (stable: dashboards and alerts use them).
// memberlist's series keep memberlist's names (memberlist_*).
const (
	MetricMembers            = "signpost_federation_members"
	MetricGossipHealth       = "signpost_federation_gossip_health_score"
	MetricOutbox             = "signpost_federation_outbox_messages"
	MetricInboundQueue       = "signpost_federation_inbound_queue_messages"
	MetricPeerMessages       = "signpost_federation_peer_messages_total"
	MetricInboundMessages    = "signpost_federation_inbound_messages_total"
	MetricRefused            = "signpost_federation_refused_total"
	MetricEventsDropped      = "signpost_federation_events_dropped_total"
	MetricMessagesSent       = "signpost_federation_messages_sent_total"
	MetricBytesSent          = "signpost_federation_sent_bytes_total"
	MetricMessagesReceived   = "signpost_federation_messages_received_total"
	MetricBytesReceived      = "signpost_federation_received_bytes_total"
	MetricEntriesReceived    = "signpost_federation_entries_received_total"
	MetricEntriesApplied     = "signpost_federation_entries_applied_total"
	MetricPushQueued         = "signpost_federation_push_queued_total"
	MetricPushDropped        = "signpost_federation_push_dropped_total"
	MetricAntiEntropySession = "signpost_federation_antientropy_sessions_total"
	MetricSendErrors         = "signpost_federation_send_errors_total"
	MetricBadMessages        = "signpost_federation_bad_messages_total"
	MetricRepliesCut         = "signpost_federation_replies_cut_total"
	MetricPulls              = "signpost_federation_pulls_total"
	MetricPullRetries        = "signpost_federation_pull_retries_total"
	MetricPullsAbandoned     = "signpost_federation_pulls_abandoned_total"
	MetricPullsRefused       = "signpost_federation_pulls_refused_total"
	MetricRejoins            = "signpost_federation_rejoins_total"
	MetricRejoinExchanges    = "signpost_federation_rejoin_exchanges_total"
	MetricReannounced        = "signpost_federation_reannounced_total"
)

// Label values of the message classes (protocol.Stats.Push, AntiEntropy).
const (
	classPush        = "push"
	classAntiEntropy = "anti_entropy"
)

var (
	descMembers = prometheus.NewDesc(MetricMembers,
		"Admitted members that are alive (self excluded).", nil, nil)
	descGossipHealth = prometheus.NewDesc(MetricGossipHealth,
		"memberlist's awareness score: 0 is healthy; failed probes and refuted suspicions raise it.", nil, nil)
	descOutbox = prometheus.NewDesc(MetricOutbox,
		"Calls queued for peers (protocol messages and revocation pushes), all peers together.", nil, nil)
	descInboundQueue = prometheus.NewDesc(MetricInboundQueue,
		"Protocol messages from peers waiting for the engine.", nil, nil)
	descPeerMessages = prometheus.NewDesc(MetricPeerMessages,
		"Protocol messages posted to peers, by result (sent, failed, dropped: the peer's queue was full).", []string{"result"}, nil)
	descInbound = prometheus.NewDesc(MetricInboundMessages,
		"Protocol messages from peers, by result (received, dropped: the engine was behind).", []string{"result"}, nil)
	descRefused = prometheus.NewDesc(MetricRefused,
		"Nodes and peer calls refused for their descriptor.", nil, nil)
	descEventsDropped = prometheus.NewDesc(MetricEventsDropped,
		"Membership events not delivered (full channel).", nil, nil)
	descMsgsSent = prometheus.NewDesc(MetricMessagesSent,
		"Engine messages sent, by class (push: rumour mongering; anti_entropy: reconciliation).", []string{"class"}, nil)
	descBytesSent = prometheus.NewDesc(MetricBytesSent,
		"Bytes of engine messages sent, by class.", []string{"class"}, nil)
	descMsgsReceived = prometheus.NewDesc(MetricMessagesReceived,
		"Engine messages received, by class.", []string{"class"}, nil)
	descBytesReceived = prometheus.NewDesc(MetricBytesReceived,
		"Bytes of engine messages received, by class.", []string{"class"}, nil)
	descEntriesReceived = prometheus.NewDesc(MetricEntriesReceived,
		"Entries received from peers.", nil, nil)
	descEntriesApplied = prometheus.NewDesc(MetricEntriesApplied,
		"Entries received from peers, by what the replica did (accepted, duplicate, rejected).", []string{"result"}, nil)
	descPushQueued = prometheus.NewDesc(MetricPushQueued,
		"Versions queued for push.", nil, nil)
	descPushDropped = prometheus.NewDesc(MetricPushDropped,
		"Versions not queued for push because the queue was full (anti-entropy repairs them).", nil, nil)
	descSessions = prometheus.NewDesc(MetricAntiEntropySession,
		"Anti-entropy exchanges this node began.", nil, nil)
	descSendErrors = prometheus.NewDesc(MetricSendErrors,
		"Engine messages the transport failed to send.", nil, nil)
	descBadMessages = prometheus.NewDesc(MetricBadMessages,
		"Received messages that did not decode or made no sense.", nil, nil)
	descRepliesCut = prometheus.NewDesc(MetricRepliesCut,
		"Replies cut short, by cause (budget: MaxReplyBytes; rate: MaxSendRate).", []string{"cause"}, nil)
	descPulls = prometheus.NewDesc(MetricPulls,
		"Versions asked for because a peer announced them.", nil, nil)
	descPullRetries = prometheus.NewDesc(MetricPullRetries,
		"Further requests for an announced version (a hedge to a second announcer, or a retry after PullTimeout).", nil, nil)
	descPullsAbandoned = prometheus.NewDesc(MetricPullsAbandoned,
		"Announced versions left to anti-entropy once no announcer was left to ask.", nil, nil)
	descPullsRefused = prometheus.NewDesc(MetricPullsRefused,
		"Announced versions not pulled because MaxPulls or MaxPullsPerPeer was reached.", nil, nil)
	descRejoins = prometheus.NewDesc(MetricRejoins,
		"Members that joined or came back, as reported to the engine.", nil, nil)
	descRejoinExchanges = prometheus.NewDesc(MetricRejoinExchanges,
		"Anti-entropy exchanges started because a member came back.", nil, nil)
	descReannounced = prometheus.NewDesc(MetricReannounced,
		"Stamps of versions created here sent again to a peer that was unreachable when they were new.", nil, nil)
)

// gossipSink is the go-metrics sink memberlist reports into, shared by every
// agent of the process (go-metrics has one global instance).
var gossipSink struct {
	once sync.Once
	sink *gmprom.PrometheusSink
	err  error
}

// installGossipSink makes the go-metrics global instance report into a
// Prometheus sink, once per process. The sink's series never expire: the
// gauges memberlist sets only on change (health score) or at push/pull
// (node instances) would otherwise vanish between updates.
func installGossipSink() (*gmprom.PrometheusSink, error) {
	gossipSink.once.Do(func() {
		// Registered only in a registry of its own: each agent's
		// Collector forwards its share.
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: prometheus.NewRegistry(), Name: "signpost_gossip_sink"})
		if err != nil {
			gossipSink.err = fmt.Errorf("federation: memberlist metrics sink: %w", err)
			return
		}
		cfg := gometrics.DefaultConfig("")
		// No host name in names or labels, no service prefix, and no
		// runtime sampler (it is a goroutine nobody would stop).
		cfg.HostName, cfg.EnableHostname, cfg.EnableRuntimeMetrics = "", false, false
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			gossipSink.err = fmt.Errorf("federation: memberlist metrics: %w", err)
			return
		}
		gossipSink.sink = sink
	})
	return gossipSink.sink, gossipSink.err
}

// gossipLabels are the labels of this agent's memberlist series.
func (a *Agent) gossipLabels() []gometrics.Label {
	return []gometrics.Label{{Name: MetricNodeLabel, Value: a.self.Descriptor.NodeID}}
}

// Collector returns a prometheus.Collector of the agent's counters (Stats,
// named signpost_federation_*) and of memberlist's own metrics for this
// agent (memberlist_*, labelled node=<node id>: members by state, health
// score, probe and gossip timings, suspect and dead messages…). Register it
// before Start: memberlist's reports begin to be kept at the first
// Collector call of the process. Before Start and after Shutdown it
// exports only the counters that need no engine.
func (a *Agent) Collector() (prometheus.Collector, error) {
	sink, err := installGossipSink()
	if err != nil {
		return nil, err
	}
	return &agentCollector{a: a, sink: sink}, nil
}

type agentCollector struct {
	a    *Agent
	sink *gmprom.PrometheusSink
}

// Describe describes the agent's own series. memberlist's are known only
// once emitted; a registry accepts them undescribed (they are checked for
// consistency when gathered).
func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descGossipHealth, descOutbox, descInboundQueue, descPeerMessages, descInbound,
		descRefused, descEventsDropped, descMsgsSent, descBytesSent, descMsgsReceived, descBytesReceived,
		descEntriesReceived, descEntriesApplied, descPushQueued, descPushDropped, descSessions,
		descSendErrors, descBadMessages, descRepliesCut, descPulls, descPullRetries, descPullsAbandoned,
		descPullsRefused, descRejoins, descRejoinExchanges, descReannounced} {
		ch <- d
	}
}

// collectTimeout bounds the wait for the engine loop during a scrape.
const collectTimeout = 2 * time.Second

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	st, err := a.Stats(ctx)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(descMembers, st.Members)
	gauge(descOutbox, a.outboxLen())
	gauge(descInboundQueue, len(a.inbound))
	counter(descPeerMessages, st.Sent, "sent")
	counter(descPeerMessages, st.SendFailed, "failed")
	counter(descPeerMessages, st.SendDropped, "dropped")
	counter(descInbound, st.Received, "received")
	counter(descInbound, st.InboundDropped, "dropped")
	counter(descRefused, st.Refused)
	counter(descEventsDropped, st.EventsDropped)
	if err == nil {
		// Stats ran on the loop, which starts after a.ml is set: reading
		// it here is ordered after Start wrote it.
		gauge(descGossipHealth, a.ml.GetHealthScore())
		p := st.Protocol
		for _, cl := range []struct {
			name string
			s    protocol.ClassStats
		}{{classPush, p.Push}, {classAntiEntropy, p.AntiEntropy}} {
			counter(descMsgsSent, cl.s.MsgsSent, cl.name)
			counter(descBytesSent, cl.s.BytesSent, cl.name)
			counter(descMsgsReceived, cl.s.MsgsReceived, cl.name)
			counter(descBytesReceived, cl.s.BytesReceived, cl.name)
		}
		counter(descEntriesReceived, p.EntriesReceived)
		counter(descEntriesApplied, p.EntriesAccepted, locator.Accepted.String())
		counter(descEntriesApplied, p.EntriesDuplicate, locator.Duplicate.String())
		counter(descEntriesApplied, p.EntriesRejected, locator.Rejected.String())
		counter(descPushQueued, p.PushQueued)
		counter(descPushDropped, p.PushDropped)
		counter(descSessions, p.SessionsStarted)
		counter(descSendErrors, p.SendErrors)
		counter(descBadMessages, p.BadMessages)
		counter(descRepliesCut, p.BudgetExhausted, "budget")
		counter(descRepliesCut, p.RateLimited, "rate")
		counter(descPulls, p.Pulls)
		counter(descPullRetries, p.PullRetries)
		counter(descPullsAbandoned, p.PullsAbandoned)
		counter(descPullsRefused, p.PullsRefused)
		counter(descRejoins, p.Rejoins)
		counter(descRejoinExchanges, p.RejoinExchanges)
		counter(descReannounced, p.Reannounced)
	}
	c.collectGossip(ch)
}

// outboxLen sums the senders' queues.
func (a *Agent) outboxLen() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.mu.senders {
		n += len(s.q)
	}
	return n
}

// collectGossip forwards the sink's series labelled with this agent's node.
func (c *agentCollector) collectGossip(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		defer close(all)
		c.sink.Collect(all)
	}()
	self := c.a.self.Descriptor.NodeID
	for m := range all {
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		for _, l := range pb.GetLabel() {
			if l.GetName() == MetricNodeLabel && l.GetValue() == self {
				ch <- m
				break
			}
		}
	}
}

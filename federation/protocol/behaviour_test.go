package protocol_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/federation/protocol"
	"github.com/signpost-federation/signpost/locator"
)

// recorder is a Transport that records what is sent, and can refuse.
type recorder struct {
	sent   [][]byte
	to     []protocol.PeerID
	refuse bool
}

func (r *recorder) Send(to protocol.PeerID, msg []byte) error {
	if r.refuse {
		return errors.New("queue full")
	}
	r.sent = append(r.sent, bytes.Clone(msg))
	r.to = append(r.to, to)
	return nil
}

func newEngine(t *testing.T, tr protocol.Transport, mem protocol.Membership, mod func(*protocol.Config)) (*protocol.Engine, locator.Store) {
	t.Helper()
	s, err := locator.NewMemStore(locator.Policy{DigestDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfg := protocol.DefaultConfig()
	cfg.Self = "me"
	cfg.Rand = rand.New(rand.NewPCG(1, 2))
	if mod != nil {
		mod(&cfg)
	}
	g, err := protocol.New(cfg, s, tr, mem)
	if err != nil {
		t.Fatal(err)
	}
	return g, s
}

func TestConfigValidation(t *testing.T) {
	s, _ := locator.NewMemStore(locator.DefaultPolicy())
	tests := []struct {
		name string
		mod  func(*protocol.Config)
	}{
		{"no self", func(c *protocol.Config) { c.Self = "" }},
		{"no rand", func(c *protocol.Config) { c.Rand = nil }},
		{"tiny messages", func(c *protocol.Config) { c.MaxMessageSize = 100 }},
		{"hops", func(c *protocol.Config) { c.MaxHops = 300 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := protocol.DefaultConfig()
			cfg.Self, cfg.Rand = "me", rand.New(rand.NewPCG(1, 1))
			tc.mod(&cfg)
			if _, err := protocol.New(cfg, s, &recorder{}, peers{}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestGarbageRejectedAndCounted(t *testing.T) {
	g, s := newEngine(t, &recorder{}, peers{"you"}, nil)
	good := publish(t, testHolder(t, 1), 1, 1)
	bad := bytes.Clone(good.Encode())
	bad[len(bad)-1] ^= 1 // signature
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"wrong version", []byte{9, 1}},
		{"unknown kind", []byte{protocol.WireVersion, 99}},
		{"huge count", []byte{protocol.WireVersion, byte(protocol.KindWant), 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}},
		{"oversized", make([]byte, 64<<10+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.Stats().BadMessages
			if err := g.HandleMessage(t0, "you", tc.msg); !errors.Is(err, protocol.ErrBadMessage) {
				t.Fatalf("error %v", err)
			}
			if g.Stats().BadMessages != before+1 {
				t.Fatal("not counted")
			}
		})
	}
	// Bad entries inside a well-formed message: counted by reason in the
	// store, never stored; the good one still applies.
	m := &protocol.Message{Kind: protocol.KindEntries, Hops: protocol.AEHops,
		Entries: [][]byte{bad, good.Encode()[:100], good.Encode()}}
	if err := g.HandleMessage(t0, "you", m.Encode()); err != nil {
		t.Fatal(err)
	}
	c := s.Counters()
	if c.Rejected[locator.ReasonBadSignature] != 1 || c.Rejected[locator.ReasonTruncated] != 1 || c.Accepted != 1 || s.Len() != 1 {
		t.Fatalf("counters %+v, len %d", c, s.Len())
	}
	if st := g.Stats(); st.EntriesReceived != 3 || st.EntriesRejected != 2 || st.EntriesAccepted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDeterministic: the same inputs give the same bytes out.
func TestDeterministic(t *testing.T) {
	run := func() [][]byte {
		tr := &recorder{}
		g, _ := newEngine(t, tr, peers{"a", "b", "c", "d", "e"}, nil)
		h := testHolder(t, 1)
		now := t0
		for i := range 30 {
			_, _ = g.Publish(now, publish(t, h, i, 1))
			g.Tick(now)
			now = now.Add(time.Second)
		}
		return tr.sent
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d vs %d messages", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
}

// TestBackPressure: a full push queue drops pushes (counted) without
// losing entries, and a refusing transport stops an exchange; anti-entropy
// still delivers everything afterwards.
func TestBackPressure(t *testing.T) {
	tr := &recorder{refuse: true}
	g, s := newEngine(t, tr, peers{"you"}, func(c *protocol.Config) { c.MaxPushQueue = 5 })
	h := testHolder(t, 1)
	for i := range 20 {
		if _, err := g.Publish(t0, publish(t, h, i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.Stats(); st.PushQueued != 5 || st.PushDropped != 15 || g.QueueLen() != 5 || s.Len() != 20 {
		t.Fatalf("stats %+v queue %d len %d", st, g.QueueLen(), s.Len())
	}
	g.Tick(t0)
	if g.Stats().SendErrors == 0 {
		t.Fatal("refused sends not counted")
	}
	// Once sends succeed, an empty peer's stamps (it is the smaller side,
	// so it lists) get everything it lacks.
	tr.refuse = false
	stamps := &protocol.Message{Kind: protocol.KindStamps, Session: 1, Depth: 2, Level: 0, To: maxID()}
	if err := g.HandleMessage(t0, "you", stamps.Encode()); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, b := range tr.sent {
		m, err := protocol.DecodeMessage(b, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == protocol.KindEntries && m.Hops == protocol.AEHops {
			got += len(m.Entries)
		}
	}
	if got != 20 {
		t.Fatalf("anti-entropy sent %d of 20 entries", got)
	}
}

// TestReplyBudget: one message cannot make the engine send more than
// MaxReplyBytes.
func TestReplyBudget(t *testing.T) {
	tr := &recorder{}
	g, _ := newEngine(t, tr, peers{"you"}, func(c *protocol.Config) {
		c.MaxReplyBytes = 16 << 10
		c.MaxMessageSize = 8 << 10
	})
	h := testHolder(t, 1)
	for i := range 200 {
		_, _ = g.Publish(t0, publish(t, h, i, 1))
	}
	stamps := &protocol.Message{Kind: protocol.KindStamps, Session: 1, Depth: 2, To: maxID()}
	_ = g.HandleMessage(t0, "you", stamps.Encode())
	total := 0
	for _, b := range tr.sent {
		total += len(b)
		if len(b) > 8<<10 {
			t.Fatalf("message of %d bytes", len(b))
		}
	}
	if total > 16<<10 || g.Stats().BudgetExhausted == 0 {
		t.Fatalf("sent %d bytes, budget exhausted %d times", total, g.Stats().BudgetExhausted)
	}
}

func TestStatsSplitByClass(t *testing.T) {
	const seed = 3
	cfg := protocol.DefaultConfig()
	cfg.AntiEntropyInterval = time.Second
	net := newNet(t, seed, 4, locator.Policy{DigestDepth: 2}, cfg)
	h := testHolder(t, 1)
	net.RunFor(time.Second)
	for i := range 10 {
		_, _ = net.Nodes()[0].Engine.Publish(net.Now, publish(t, h, i, 1))
	}
	net.RunFor(10 * time.Second)
	var push, ae, total uint64
	for _, n := range net.Nodes() {
		st := n.Engine.Stats()
		push += st.Push.BytesSent
		ae += st.AntiEntropy.BytesSent
	}
	total = net.BytesSent
	if push == 0 || ae == 0 || push+ae != total {
		t.Fatalf("push %d + anti-entropy %d != %d", push, ae, total)
	}
}

func maxID() locator.ID {
	var id locator.ID
	for i := range id {
		id[i] = 0xff
	}
	return id
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		m  protocol.Message
		ae bool
	}{
		{protocol.Message{Kind: protocol.KindEntries, Hops: 1}, false},
		{protocol.Message{Kind: protocol.KindEntries, Hops: protocol.AEHops}, true},
		{protocol.Message{Kind: protocol.KindWant, Hops: protocol.AEHops}, true},
		{protocol.Message{Kind: protocol.KindWant, Hops: 2}, false},
		{protocol.Message{Kind: protocol.KindHave}, false},
		{protocol.Message{Kind: protocol.KindNodes, Depth: 1}, true},
		{protocol.Message{Kind: protocol.KindStamps, Depth: 1}, true},
	} {
		k, ae, ok := protocol.Classify(tc.m.Encode())
		if !ok || k != tc.m.Kind || ae != tc.ae {
			t.Errorf("%s hops %d: kind %s ae %v ok %v", tc.m.Kind, tc.m.Hops, k, ae, ok)
		}
	}
	if _, _, ok := protocol.Classify([]byte{1}); ok {
		t.Error("short message classified")
	}
}

// TestSendRate: with MaxSendRate, answers stop when the bucket is empty and
// resume as virtual time passes; a rate-limited bulk still converges.
func TestSendRate(t *testing.T) {
	tr := &recorder{}
	g, _ := newEngine(t, tr, peers{"you"}, func(c *protocol.Config) {
		c.MaxSendRate = 16 << 10
		c.MaxMessageSize = 8 << 10
	})
	h := testHolder(t, 1)
	for i := range 300 {
		_, _ = g.Publish(t0, publish(t, h, i, 1))
	}
	ask := (&protocol.Message{Kind: protocol.KindStamps, Session: 1, Depth: 2, To: maxID()}).Encode()
	sent := func() int {
		n := 0
		for _, b := range tr.sent {
			n += len(b)
		}
		tr.sent = nil
		return n
	}
	_ = g.HandleMessage(t0, "you", ask)
	first := sent()
	_ = g.HandleMessage(t0, "you", ask)
	second := sent()
	_ = g.HandleMessage(t0.Add(time.Second), "you", ask)
	third := sent()
	if first > 16<<10 || second != 0 || third == 0 || third > 16<<10 || g.Stats().RateLimited < 2 {
		t.Fatalf("sent %d, %d, %d bytes; rate limited %d times", first, second, third, g.Stats().RateLimited)
	}

	cfg := protocol.DefaultConfig()
	cfg.MaxSendRate = 256 << 10
	cfg.MaxPushQueue = 10 // nearly all by anti-entropy
	cfg.AntiEntropyInterval = time.Second
	net := newNet(t, 5, 4, locator.Policy{DigestDepth: 2}, cfg)
	for i := range 2000 {
		_, _ = net.Nodes()[0].Engine.Publish(net.Now, publish(t, h, 1000+i, 1))
	}
	if !net.RunUntil(10*time.Minute, converged(net)) || net.Nodes()[3].Store.Len() != 2000 {
		t.Fatal("rate-limited bulk did not converge")
	}
	t.Logf("2000 entries at 256 KiB/s per node: converged after %v of virtual time", net.Now.Sub(t0))
}

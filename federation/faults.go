package federation

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// faultSet is a test hook: it partitions an agent from some nodes by
// dropping gossip to their addresses and refusing peer API traffic to and
// from their ids. Production agents have none.
type faultSet struct {
	mu    sync.Mutex
	nodes map[string]bool // node ids cut off
	addrs map[string]bool // gossip host:port cut off
}

func newFaultSet() *faultSet {
	return &faultSet{nodes: map[string]bool{}, addrs: map[string]bool{}}
}

// set replaces the blocked nodes and addresses.
func (f *faultSet) set(nodes, addrs []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes, f.addrs = map[string]bool{}, map[string]bool{}
	for _, n := range nodes {
		f.nodes[n] = true
	}
	for _, a := range addrs {
		f.addrs[a] = true
	}
}

func (f *faultSet) node(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[id]
}

func (f *faultSet) addr(a string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[a]
}

func (a *Agent) blockedPeer(id string) bool { return a.faults != nil && a.faults.node(id) }

// faultyTransport drops memberlist packets and refuses streams to blocked
// addresses (outbound only; a partition blocks both directions by
// configuring both sides).
type faultyTransport struct {
	*memberlist.NetTransport
	f *faultSet
}

var _ memberlist.NodeAwareTransport = &faultyTransport{}

func (t *faultyTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.f.addr(addr) {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

func (t *faultyTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, addr.Addr)
}

func (t *faultyTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.f.addr(addr) {
		return nil, fmt.Errorf("fault injection: %s unreachable", addr)
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

func (t *faultyTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(addr.Addr, timeout)
}

package federation

import "github.com/hashicorp/memberlist"

// aliveDelegate refuses alive messages from nodes whose metadata does not
// carry a descriptor that verifies now, or whose memberlist name is not the
// descriptor's node id. memberlist then ignores the node: it never enters
// the member list, whether it arrived by join, push/pull or gossip.
//
// The local node itself is always admitted: its descriptor was verified by
// NewAgent, and refusing it would leave memberlist without a local node.
type aliveDelegate struct {
	a    *Agent
	self string // memberlist name of the local node
}

var _ memberlist.AliveDelegate = &aliveDelegate{}

func (d *aliveDelegate) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == d.self {
		return nil
	}
	_, err := d.a.admit(peer)
	return err
}

package federation

import (
	"net"
	"strings"
	"time"
)

// Member is one node of the federation as this node sees it.
type Member struct {
	Descriptor
	// PeerAddr is where the member's peer API listens (host:port).
	PeerAddr string
	// Alive is memberlist's view: false once the node is suspected dead
	// or has left. A dead member's entries stay in every replica.
	Alive bool
}

// EventType says what happened to a member.
type EventType uint8

// Membership event types.
const (
	// MemberJoined: a node with a valid descriptor joined (or came back).
	MemberJoined EventType = iota + 1
	// MemberLeft: the node left or memberlist declared it dead.
	MemberLeft
	// MemberUpdated: the node's metadata (descriptor, peer address) changed.
	MemberUpdated
	// MemberRefused: a node tried to join or announce itself with a
	// missing, forged, expired or revoked descriptor; Err says which.
	MemberRefused
	// KeyRecordAdopted: a newer key record is in force (MemberEvent.KeyRecord;
	// Member is empty).
	KeyRecordAdopted
	// DKGEnded: a DKG or reshare session this node took part in finished
	// or aborted (MemberEvent.DKG; Member is empty).
	DKGEnded
)

func (t EventType) String() string {
	switch t {
	case MemberJoined:
		return "joined"
	case MemberLeft:
		return "left"
	case MemberUpdated:
		return "updated"
	case MemberRefused:
		return "refused"
	case KeyRecordAdopted:
		return "key-record-adopted"
	case DKGEnded:
		return "dkg-ended"
	}
	return "unknown"
}

// MemberEvent is a membership change, or a change of the federation's key
// metadata (KeyRecordAdopted, DKGEnded). For MemberRefused only
// Member.NodeID (the memberlist name claimed) is reliable.
type MemberEvent struct {
	Type   EventType
	Member Member
	Err    error
	// KeyRecord is the record adopted (KeyRecordAdopted).
	KeyRecord *KeyRecord
	// DKG is the final status of the session (DKGEnded).
	DKG *DKGStatus
}

// member is the agent's record of one node.
type member struct {
	sd         *SignedDescriptor
	peerAddr   string // resolved host:port
	gossipAddr string // memberlist host:port
	alive      bool
	left       bool      // left gracefully (not reconnected), as opposed to failed
	downAt     time.Time // when memberlist last reported it dead or gone
}

// resolvePeerAddr turns the advertised peer address (":port" means at the
// gossip IP) into host:port.
func resolvePeerAddr(advertised string, gossipIP net.IP) string {
	if strings.HasPrefix(advertised, ":") && gossipIP != nil {
		return net.JoinHostPort(gossipIP.String(), advertised[1:])
	}
	return advertised
}

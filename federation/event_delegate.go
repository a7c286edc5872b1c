package federation

import "github.com/hashicorp/memberlist"

// eventDelegate keeps the agent's member table in step with memberlist and
// emits MemberEvents.
type eventDelegate struct {
	a *Agent
}

var _ memberlist.EventDelegate = &eventDelegate{}

func (d *eventDelegate) NotifyJoin(n *memberlist.Node)   { d.a.noteMember(n, true, MemberJoined) }
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) { d.a.noteMember(n, true, MemberUpdated) }
func (d *eventDelegate) NotifyLeave(n *memberlist.Node)  { d.a.noteMember(n, false, MemberLeft) }

package federation

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// mergeDelegate vets the remote state of a join (push/pull with join set).
// A state holding a node with no descriptor, a forged one (including one
// from another authority) or a name that is not its descriptor's id is
// refused whole: this is not our federation, or someone is lying.
//
// Revoked and expired descriptors do not refuse the merge: memberlist
// cannot evict a node, so a revoked node may linger in honest nodes' state,
// and refusing whole merges would then stop every honest node from
// joining. Such nodes are refused one by one by aliveDelegate instead.
type mergeDelegate struct {
	a *Agent
}

var _ memberlist.MergeDelegate = &mergeDelegate{}

func (d *mergeDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if _, err := d.a.admit(p); err != nil &&
			!errors.Is(err, ErrDescriptorRevoked) && !errors.Is(err, ErrDescriptorExpired) {
			return fmt.Errorf("federation: refusing merge: %w", err)
		}
	}
	return nil
}

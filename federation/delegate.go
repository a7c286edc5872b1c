package federation

import "github.com/hashicorp/memberlist"

// delegate supplies this node's metadata to memberlist. Entries are not
// gossiped through memberlist, so the other hooks are empty.
type delegate struct {
	meta []byte
}

var _ memberlist.Delegate = &delegate{}

func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		// Cannot happen: MaxSignedDescriptorSize leaves room for the
		// envelope. memberlist would panic on oversize metadata, so send
		// none (peers refuse us) rather than crash.
		return nil
	}
	return d.meta
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

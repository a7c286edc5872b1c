package port

import (
	"context"
	"time"
)

// Publication is one entry to publish: the arguments of [Index.Publish].
type Publication struct {
	Keys       Keys
	Category   string
	Version    uint64
	Registered time.Time
	Expires    time.Time
}

// BatchIndex is an [Index] that publishes many entries at once: entries
// built (signed and sealed) on every core and written to the replica in one
// transaction. The node uses it when its Index has it (imports and
// republishing), and Publish otherwise. PublishBatch returns one error per
// publication (nil: published, or already there), as Publish would have.
type BatchIndex interface {
	PublishBatch(ctx context.Context, pubs []Publication) []error
}

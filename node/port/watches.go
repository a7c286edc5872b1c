package port

import (
	"errors"
	"time"
)

// StoredWatch is a practitioner's watch as the node keeps it: held for the
// user across pages, reloads and restarts until Expires or until the user
// stops it. Keys are the lookup keys watched (one per token key in force
// when it was started): the only thing about the person the node ever
// sees. No NHS number, no seal key.
type StoredWatch struct {
	ID      string
	User    string
	Purpose string
	Keys    [][16]byte
	Started time.Time
	Expires time.Time
}

// WatchNotice is one change under a stored watch's key, kept until the
// watch ends: Type "involved" or "withdrawn", the sealed entry, when the
// node saw it, and whether the user has marked it seen. Seq orders a
// watch's notices (1, 2, …; assigned by the store).
type WatchNotice struct {
	WatchID   string
	Seq       uint64
	Type      string
	LookupKey [16]byte
	Entry     []byte
	At        time.Time
	Seen      bool
}

// WatchStore keeps stored watches and their notices durably: every write
// is committed before it returns. Safe for concurrent use.
type WatchStore interface {
	// Create stores w unless its user already has maxPerUser watches
	// (ErrWatchLimit). A watch of the same user and purpose that shares a
	// key with w is extended instead (its keys joined with w's, at most
	// maxKeys, else ErrWatchKeys; its expiry moved to w's) and returned;
	// created says which happened.
	Create(w StoredWatch, maxPerUser, maxKeys int) (got StoredWatch, created bool, err error)
	// Get returns the watch id (ErrWatchNotFound).
	Get(id string) (StoredWatch, error)
	// List returns user's watches, oldest first; All every watch.
	List(user string) ([]StoredWatch, error)
	All() ([]StoredWatch, error)
	// Delete removes the watch id and its notices and returns it
	// (ErrWatchNotFound).
	Delete(id string) (StoredWatch, error)
	// AddNotice stores a notice under its watch (ErrWatchNotFound if the
	// watch has gone), keeping at most max per watch (the oldest go), and
	// returns it with its Seq.
	AddNotice(n WatchNotice, max int) (WatchNotice, error)
	// Notices returns a watch's notices, oldest first.
	Notices(watchID string) ([]WatchNotice, error)
	// MarkSeen marks the watch's notices up to seq seen.
	MarkSeen(watchID string, upTo uint64) error
	// DeleteExpired removes up to max watches expired at now, with their
	// notices, and returns them.
	DeleteExpired(now time.Time, max int) ([]StoredWatch, error)
	Close() error
}

// Errors of a WatchStore.
var (
	ErrWatchNotFound = errors.New("node: no such watch")
	ErrWatchLimit    = errors.New("node: watch limit reached")
	ErrWatchKeys     = errors.New("node: too many lookup keys for one watch")
)

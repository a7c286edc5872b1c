package watches

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/port"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func key(b byte) [16]byte { return [16]byte{b, 1, 2, 3} }

func watch(user, purpose string, keys ...[16]byte) port.StoredWatch {
	return port.StoredWatch{ID: NewID(), User: user, Purpose: purpose, Keys: keys, Started: t0, Expires: t0.Add(90 * 24 * time.Hour)}
}

// TestCreate: a watch is stored for its user; a second watch of the same
// user and purpose sharing a key extends the first (a search again during
// a key rotation adds the new key); caps on watches per user and keys per
// watch hold; one user's watches are not another's.
func TestCreate(t *testing.T) {
	tests := []struct {
		name        string
		first       port.StoredWatch
		second      port.StoredWatch
		maxPerUser  int
		wantCreated bool
		wantErr     error
		wantKeys    int // of the second's answer
		wantMine    int // watches of "sam" after both
	}{
		{"new person", watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(2)), 5, true, nil, 1, 2},
		{"same person, a new key", watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(1), key(9)), 5, false, nil, 2, 1},
		{"same keys again", watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(1)), 5, false, nil, 1, 1},
		{"same key, other purpose", watch("sam", "safeguarding", key(1)), watch("sam", "direct-care", key(1)), 5, true, nil, 1, 2},
		{"same key, other user", watch("jo", "safeguarding", key(1)), watch("sam", "safeguarding", key(1)), 1, true, nil, 1, 1},
		{"over the cap", watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(2)), 1, false, ErrLimit, 0, 1},
		{"the cap does not stop an extension", watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(1), key(2)), 1, false, nil, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "w.db"))
			if _, created, err := s.Create(tc.first, tc.maxPerUser, MaxKeys); err != nil || !created {
				t.Fatalf("first: %v %v", created, err)
			}
			got, created, err := s.Create(tc.second, tc.maxPerUser, MaxKeys)
			if !errors.Is(err, tc.wantErr) || created != tc.wantCreated || len(got.Keys) != tc.wantKeys {
				t.Fatalf("second: created %v, %d keys, err %v; want %v, %d, %v", created, len(got.Keys), err, tc.wantCreated, tc.wantKeys, tc.wantErr)
			}
			if err == nil && !created && got.ID != tc.first.ID {
				t.Errorf("extended %s, want the first watch %s", got.ID, tc.first.ID)
			}
			mine, err := s.List("sam")
			if err != nil || len(mine) != tc.wantMine {
				t.Fatalf("sam's watches %d (%v), want %d", len(mine), err, tc.wantMine)
			}
			for _, w := range mine {
				if w.User != "sam" {
					t.Errorf("sam's list holds %s's watch", w.User)
				}
			}
		})
	}
}

// TestCreateRefuses: a watch of the wrong shape, or with more keys than
// allowed (alone or once joined to the watch it extends), is refused and
// nothing is stored.
func TestCreateRefuses(t *testing.T) {
	many := make([][16]byte, 4)
	for i := range many {
		many[i] = key(byte(10 + i))
	}
	tests := []struct {
		name string
		w    port.StoredWatch
		want error
	}{
		{"no keys", watch("sam", "safeguarding"), ErrInvalid},
		{"a key twice", watch("sam", "safeguarding", key(1), key(1)), ErrInvalid},
		{"no user", watch("", "safeguarding", key(1)), ErrInvalid},
		{"user with a line break", watch("sam\n", "safeguarding", key(1)), ErrInvalid},
		{"no purpose", watch("sam", "", key(1)), ErrInvalid},
		{"bad id", func() port.StoredWatch { w := watch("sam", "safeguarding", key(1)); w.ID = "x"; return w }(), ErrInvalid},
		{"expires before it starts", func() port.StoredWatch { w := watch("sam", "safeguarding", key(1)); w.Expires = t0; return w }(), ErrInvalid},
		{"too many keys", watch("sam", "safeguarding", many...), ErrKeys},
		{"too many keys once joined", watch("sam", "safeguarding", key(1), many[0], many[1]), ErrKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "w.db"))
			first := watch("sam", "safeguarding", key(1), key(2))
			if _, _, err := s.Create(first, 5, 3); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Create(tc.w, 5, 3); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			all, err := s.All()
			if err != nil || len(all) != 1 || !slices.Equal(all[0].Keys, first.Keys) {
				t.Fatalf("after a refusal the store holds %+v (%v)", all, err)
			}
		})
	}
}

// TestNotices: notices are numbered per watch, kept at most max (the
// oldest go), marked seen up to a number, refused for a watch that has
// gone, and deleted with their watch.
func TestNotices(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"))
	a, b := watch("sam", "safeguarding", key(1)), watch("sam", "safeguarding", key(2))
	for _, w := range []port.StoredWatch{a, b} {
		if _, _, err := s.Create(w, 5, MaxKeys); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		n, err := s.AddNotice(port.WatchNotice{WatchID: a.ID, Type: Involved, LookupKey: key(1), Entry: []byte{byte(i)}, At: t0.Add(time.Duration(i) * time.Minute)}, 3)
		if err != nil || n.Seq != uint64(i+1) {
			t.Fatalf("notice %d: seq %d, %v", i, n.Seq, err)
		}
	}
	if _, err := s.AddNotice(port.WatchNotice{WatchID: b.ID, Type: Withdrawn, LookupKey: key(2), At: t0}, 3); err != nil {
		t.Fatal(err)
	}
	got, err := s.Notices(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, n := range got {
		seqs = append(seqs, n.Seq)
	}
	if !slices.Equal(seqs, []uint64{3, 4, 5}) || !got[0].At.Equal(t0.Add(2*time.Minute)) || got[0].Entry[0] != 2 {
		t.Fatalf("kept %v (%+v), want the newest three", seqs, got[0])
	}
	if err := s.MarkSeen(a.ID, 4); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Notices(a.ID)
	if !got[0].Seen || !got[1].Seen || got[2].Seen {
		t.Fatalf("seen %v %v %v, want up to 4", got[0].Seen, got[1].Seen, got[2].Seen)
	}
	if _, err := s.AddNotice(port.WatchNotice{WatchID: a.ID, Type: "match", LookupKey: key(1), At: t0}, 3); !errors.Is(err, ErrInvalid) {
		t.Errorf("a notice of another type: %v", err)
	}
	if _, err := s.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Notices(a.ID); err != nil || len(got) != 0 {
		t.Fatalf("notices of a stopped watch: %v %v", got, err)
	}
	if _, err := s.AddNotice(port.WatchNotice{WatchID: a.ID, Type: Involved, LookupKey: key(1), At: t0}, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("a notice for a stopped watch: %v", err)
	}
	if err := s.MarkSeen(a.ID, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("mark seen of a stopped watch: %v", err)
	}
	if got, _ := s.Notices(b.ID); len(got) != 1 {
		t.Errorf("the other watch's notices: %+v", got)
	}
	if _, err := s.Delete(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("stopping twice: %v", err)
	}
}

// TestDeleteExpired: watches at or past their expiry go, with their
// notices, at most limit per call; the others stay.
func TestDeleteExpired(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "w.db"))
	var ws []port.StoredWatch
	for i := range 4 {
		w := watch("sam", "safeguarding", key(byte(i)))
		w.Expires = t0.Add(time.Duration(i+1) * time.Hour)
		ws = append(ws, w)
		if _, _, err := s.Create(w, 10, MaxKeys); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddNotice(port.WatchNotice{WatchID: w.ID, Type: Involved, LookupKey: key(byte(i)), At: t0}, 10); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(3 * time.Hour) // the first three are due
	gone, err := s.DeleteExpired(now, 2)
	if err != nil || len(gone) != 2 {
		t.Fatalf("first pass: %d gone, %v", len(gone), err)
	}
	more, err := s.DeleteExpired(now, 2)
	if err != nil || len(more) != 1 {
		t.Fatalf("second pass: %d gone, %v", len(more), err)
	}
	left, _ := s.All()
	if len(left) != 1 || left[0].ID != ws[3].ID {
		t.Fatalf("left %+v, want the last", left)
	}
	for _, w := range append(gone, more...) {
		if n, _ := s.Notices(w.ID); len(n) != 0 {
			t.Errorf("notices of expired %s kept", w.ID)
		}
	}
}

// TestReopen: what was stored is there after the store is closed and
// opened again, and a closed store refuses.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w := watch("sam", "safeguarding", key(1), key(2))
	if _, _, err := s.Create(w, 5, MaxKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddNotice(port.WatchNotice{WatchID: w.ID, Type: Involved, LookupKey: key(2), Entry: []byte("sealed"), At: t0}, 5); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.List("sam"); !errors.Is(err, ErrClosed) {
		t.Errorf("a closed store: %v", err)
	}
	s = open(t, path)
	got, err := s.Get(w.ID)
	if err != nil || got.User != "sam" || !slices.Equal(got.Keys, w.Keys) || !got.Started.Equal(w.Started) || !got.Expires.Equal(w.Expires) {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	n, err := s.Notices(w.ID)
	if err != nil || len(n) != 1 || string(n[0].Entry) != "sealed" || n[0].LookupKey != key(2) {
		t.Fatalf("notices after reopening: %+v %v", n, err)
	}
	if next, _ := s.AddNotice(port.WatchNotice{WatchID: w.ID, Type: Withdrawn, LookupKey: key(1), At: t0}, 5); next.Seq != 2 {
		t.Errorf("the next notice is numbered %d, want 2", next.Seq)
	}
}

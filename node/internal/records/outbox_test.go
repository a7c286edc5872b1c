package records

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func pubOf(epoch uint32, version uint64, b byte) Published {
	return Published{Epoch: epoch, Version: version, Expires: retain, Keys: []PubKey{
		{Purpose: "safeguarding", Epoch: 3, Lookup: [16]byte{b, 1}, Seal: [32]byte{b, 2}},
		{Purpose: "direct-care", Epoch: 4, Lookup: [16]byte{b, 3}, Seal: [32]byte{b, 4}},
	}}
}

func TestPublishedRoundTrip(t *testing.T) {
	for _, p := range []Published{
		{},
		pubOf(7, 1<<40, 9),
		{Epoch: 1, Version: 2, Expires: retain, RefreshAt: retain.Add(-time.Hour), Keys: []PubKey{{Purpose: "p", Lookup: [16]byte{1}}}},
	} {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Published
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if len(p.Keys) == 0 {
			p.Keys = []PubKey{}
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
	}
	if _, err := (Published{Keys: []PubKey{{Purpose: ""}}}).MarshalBinary(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty purpose: %v", err)
	}
}

// TestPublishedBeforeEpochs: a value stored before the keys' epochs were
// kept (no trailer) still decodes, with every key's epoch unknown (0), and
// a damaged trailer is corrupt.
func TestPublishedBeforeEpochs(t *testing.T) {
	p := pubOf(7, 3, 5)
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	old := b[:len(b)-1-4*len(p.Keys)] // as an older node wrote it
	var got Published
	if err := got.UnmarshalBinary(old); err != nil {
		t.Fatal(err)
	}
	for i := range p.Keys {
		p.Keys[i].Epoch = 0
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("older value: got %+v, want %+v", got, p)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(bytes.Clone(b), 0), append(bytes.Clone(old), 2, 0, 0, 0, 1, 0, 0, 0, 1)} {
		if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damaged trailer (%d bytes): %v", len(bad), err)
		}
	}
}

// FuzzPublished: the decoder never panics, and what it accepts encodes back
// to the same bytes.
func FuzzPublished(f *testing.F) {
	b, _ := pubOf(1, 2, 3).MarshalBinary()
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Published
		if err := p.UnmarshalBinary(in); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted value does not encode: %v", err)
		}
		var q Published
		if err := q.UnmarshalBinary(out); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-decoded %+v (%v), want %+v", q, err, p)
		}
	})
}

// Every write makes its outbox item in its own transaction; Complete
// removes items and records what was published, kept in step with the
// owned-keys index.
func TestOutboxItemsAndComplete(t *testing.T) {
	s := openTest(t)
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	note := Note{At: at, Audit: "record-create", Actor: "op"}
	res, err := s.PutBatch([]Record{rec("a", "9990000018"), rec("b", "9990000026"), {LocalID: "bad"}}, note)
	if err != nil || res[0].Seq == 0 || res[1].Seq == 0 || res[2].Err == nil || res[2].Seq != 0 {
		t.Fatalf("put batch: %v %+v", err, res)
	}
	if s.OutboxLen() != 2 {
		t.Fatalf("outbox %d, want 2", s.OutboxLen())
	}
	if oldest, ok, err := s.OutboxOldest(); err != nil || !ok || !oldest.Equal(at) {
		t.Fatalf("oldest %v %v %v", oldest, ok, err)
	}
	items, err := s.Pending(0, 10)
	if err != nil || len(items) != 2 || items[0].Op != OpPublish || items[0].LocalID != "a" || items[0].Audit != "record-create" || items[0].NHSNumber != "" {
		t.Fatalf("pending %v %v", items, err)
	}
	if more, _ := s.Pending(items[0].Seq, 10); len(more) != 1 || more[0].LocalID != "b" {
		t.Fatalf("pending after the first: %v", more)
	}
	if err := s.Complete([]uint64{items[0].Seq}, map[string]Published{"a": pubOf(1, 1, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	if s.OutboxLen() != 1 {
		t.Fatalf("outbox %d after completing one", s.OutboxLen())
	}
	id, k, ok, err := s.Owner([16]byte{1, 3})
	if err != nil || !ok || id != "a" || k.Purpose != "direct-care" || k.Seal != [32]byte{1, 4} {
		t.Fatalf("owner: %q %+v %v %v", id, k, ok, err)
	}
	// Delete: the item carries no number when the keys are known.
	_, seq, err := s.Delete("a", note)
	if err != nil || seq == 0 {
		t.Fatal(err)
	}
	// b was never published: its deletion keeps the number to tokenise.
	_, seqB, err := s.Delete("b", note)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Items([]uint64{seq, seqB, 999})
	if err != nil || len(got) != 2 || got[0].Op != OpWithdraw || got[0].NHSNumber != "" || got[1].NHSNumber != "9990000026" || got[0].Version != 2 {
		t.Fatalf("withdraw items %v %v", got, err)
	}
	if err := s.Complete([]uint64{seq}, nil, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Owner([16]byte{1, 3}); ok {
		t.Fatal("owner still known after the withdrawal")
	}
	if owned, err := s.OwnedLookups(); err != nil || len(owned) != 0 {
		t.Fatalf("owned %v %v", owned, err)
	}
	// The count survives a reopen.
	path := s.db.Path()
	s.Close()
	s2, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.OutboxLen() != 2 {
		t.Fatalf("outbox %d after reopen, want 2", s2.OutboxLen())
	}
}

// EnqueueDue reads the due index up to now only and makes each due record
// a new version with a publish item.
func TestEnqueueDue(t *testing.T) {
	s := openTest(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Put(rec(id, "9990000018"), Note{}); err != nil {
			t.Fatal(err)
		}
	}
	items, _ := s.Pending(0, 10)
	var seqs []uint64
	for _, it := range items {
		seqs = append(seqs, it.Seq)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	due := func(at time.Time, b byte) Published { p := pubOf(1, 1, b); p.RefreshAt = at; return p }
	if err := s.Complete(seqs, map[string]Published{"a": due(now.Add(-time.Minute), 1), "b": due(now.Add(time.Hour), 2), "c": pubOf(1, 1, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	n, next, err := s.EnqueueDue(now, Note{At: now})
	if err != nil || n != 1 || !next.Equal(now.Add(time.Hour)) {
		t.Fatalf("due: %d next %v %v", n, next, err)
	}
	items, _ = s.Pending(0, 10)
	if len(items) != 1 || items[0].LocalID != "a" || items[0].Version != 2 {
		t.Fatalf("items %v", items)
	}
	if r, _ := s.Get("a"); r.Version != 2 {
		t.Fatalf("record version %d, want 2", r.Version)
	}
	if n, _, _ := s.EnqueueDue(now, Note{}); n != 0 {
		t.Fatal("enqueued twice")
	}
}

// A new epoch: every unobjected record not yet published under it is
// queued, a step at a time; then the epoch is recorded.
func TestEnsureAndEnqueueEpoch(t *testing.T) {
	s := openTest(t)
	if back, err := s.EnsureEpoch(1); err != nil || back {
		t.Fatalf("empty store: backfill %v %v", back, err)
	}
	nums := map[string]string{"a": "9990000018", "b": "9990000026", "c": "9990000034", "d": "9990000042", "e": "9990000050"}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		if _, err := s.Put(rec(id, nums[id]), Note{}); err != nil {
			t.Fatal(err)
		}
	}
	if back, _ := s.EnsureEpoch(1); back {
		t.Fatal("epoch 1 was recorded; no backfill needed")
	}
	if _, err := s.Object("b", Note{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(nil, map[string]Published{"c": pubOf(2, 1, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	before := s.OutboxLen()
	if back, _ := s.EnsureEpoch(2); !back {
		t.Fatal("a new epoch needs a backfill")
	}
	var after string
	total, steps := 0, 0
	for {
		last, n, err := s.EnqueueEpoch(2, after, 2, Note{})
		if err != nil {
			t.Fatal(err)
		}
		total += n
		steps++
		if last == "" {
			break
		}
		after = last
	}
	// a, d, e (b objected, c published under 2).
	if total != 3 || s.OutboxLen() != before+3 || steps != 3 {
		t.Fatalf("queued %d in %d steps, outbox %d→%d", total, steps, before, s.OutboxLen())
	}
	if back, _ := s.EnsureEpoch(2); back {
		t.Fatal("epoch 2 not recorded once done")
	}
}

// A store written before the expiry index existed gets it built at open,
// so that the sweep finds its records.
func TestExpiryIndexBuiltForOldStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("old", "9990000018")
	r.RetainUntil = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.Put(r, Note{}); err != nil {
		t.Fatal(err)
	}
	// Make it an old store: no index, no mark.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketExpiry); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(metaExpiryIndex)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gone, _, err := s.DeleteExpired(r.RetainUntil, 10, r.RetainUntil, Note{})
	if err != nil || len(gone) != 1 || gone[0].Record.LocalID != "old" {
		t.Fatalf("sweep of an old store: %v %v", gone, err)
	}
}

// The retention sweep queues the withdrawal of published entries, without
// the NHS number, and returns their keys for the audit.
func TestDeleteExpiredQueuesWithdrawal(t *testing.T) {
	s := openTest(t)
	r := rec("a", "9990000018")
	if _, err := s.Put(r, Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(rec("b", "9990000026"), Note{}); err != nil {
		t.Fatal(err)
	}
	items, _ := s.Pending(0, 10)
	if err := s.Complete([]uint64{items[0].Seq, items[1].Seq}, map[string]Published{"a": pubOf(1, 1, 1)}, nil); err != nil {
		t.Fatal(err)
	}
	tomb := retain.Add(24 * time.Hour)
	gone, _, err := s.DeleteExpired(retain, 10, tomb, Note{})
	if err != nil || len(gone) != 2 {
		t.Fatalf("%v %v", gone, err)
	}
	items, _ = s.Pending(0, 10)
	if len(items) != 1 || items[0].LocalID != "a" || items[0].Op != OpWithdraw || items[0].NHSNumber != "" || !items[0].Expires.Equal(tomb) {
		t.Fatalf("items %v", items)
	}
	for _, e := range gone {
		if (e.Record.LocalID == "a") != (len(e.Keys) == 2) {
			t.Fatalf("%s keys %d", e.Record.LocalID, len(e.Keys))
		}
	}
	if raw, _ := s.Items([]uint64{items[0].Seq}); bytes.Contains([]byte(raw[0].GoString()), []byte("999")) {
		t.Fatal("an item prints a number")
	}
}

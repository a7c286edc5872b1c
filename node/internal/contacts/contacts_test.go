package contacts

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func received(id string) Request {
	return Request{ID: id, Side: Received, Peer: "csc", PeerAgency: "Northshire CSC", RemoteID: NewID(), Requester: "Sam (practitioner)",
		Purpose: "safeguarding", Lookup: [16]byte{1, 2, 3}, LocalID: "g1", Message: "please call", State: New, Created: t0, Updated: t0}
}

// relayedReq is a broker's relayed request: nothing about the person.
func relayedReq(id string) Request {
	return Request{ID: id, Side: Relayed, Peer: "csc", RemoteID: NewID(), Holder: "clinic", Requester: "sam",
		Purpose: "safeguarding", State: New, Created: t0, Updated: t0}
}

func sent(id string) Request {
	return Request{ID: id, Side: Sent, Peer: "gp", PeerAgency: "Northshire GP", Requester: "sam", Purpose: "safeguarding",
		Lookup: [16]byte{1, 2, 3}, State: New, Created: t0, Updated: t0}
}

// TestTransitions: from new, a request is answered (with a contact) or
// declined (with a reason), once; nothing moves out of answered or
// declined; a decision of the wrong shape is refused and changes nothing.
func TestTransitions(t *testing.T) {
	answer := Decision{State: Answered, Contact: "Jo Bloggs, designated safeguarding lead, 01632 960123", By: "jo"}
	decline := Decision{State: Declined, Reason: "the child has left this school", By: "jo"}
	tests := []struct {
		name  string
		steps []Decision
		errs  []error // per step
		final State
	}{
		{"answer", []Decision{answer}, []error{nil}, Answered},
		{"decline", []Decision{decline}, []error{nil}, Declined},
		{"answer twice", []Decision{answer, answer}, []error{nil, ErrDecided}, Answered},
		{"no un-declining", []Decision{decline, answer}, []error{nil, ErrDecided}, Declined},
		{"no decline after an answer", []Decision{answer, decline}, []error{nil, ErrDecided}, Answered},
		{"back to new", []Decision{{State: New, By: "jo"}}, []error{ErrInvalid}, New},
		{"unknown state", []Decision{{State: "accepted", Contact: "x", By: "jo"}}, []error{ErrInvalid}, New},
		{"answer without a contact", []Decision{{State: Answered, Contact: "  ", By: "jo"}}, []error{ErrInvalid}, New},
		{"answer with a line break", []Decision{{State: Answered, Contact: "Jo\nBloggs", By: "jo"}}, []error{ErrInvalid}, New},
		{"answer too long", []Decision{{State: Answered, Contact: strings.Repeat("a", MaxContactLen+1), By: "jo"}}, []error{ErrInvalid}, New},
		{"decline without a reason", []Decision{{State: Declined, By: "jo"}}, []error{ErrInvalid}, New},
		{"decline with a bidi override", []Decision{{State: Declined, Reason: "no \u202e", By: "jo"}}, []error{ErrInvalid}, New},
		{"answer carrying a reason", []Decision{{State: Answered, Contact: "Jo", Reason: "x", By: "jo"}}, []error{ErrInvalid}, New},
		{"invalid then valid", []Decision{{State: Declined, By: "jo"}, decline}, []error{ErrInvalid, nil}, Declined},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "c.db"))
			r := received(NewID())
			if err := s.Create(r); err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.steps {
				at := t0.Add(time.Duration(i+1) * time.Minute)
				got, err := s.Decide(r.ID, Received, d, at)
				if !errors.Is(err, tc.errs[i]) || (tc.errs[i] == nil) != (err == nil) {
					t.Fatalf("step %d: %v, want %v", i, err, tc.errs[i])
				}
				if err == nil && (got.State != d.State || !got.Same(d) || got.DecidedBy != d.By || !got.Updated.Equal(at) || !got.Undelivered || !got.NextAttempt.Equal(at)) {
					t.Fatalf("step %d: stored %+v", i, got)
				}
				if errors.Is(err, ErrDecided) && got.State != tc.final {
					t.Fatalf("step %d: ErrDecided with %+v", i, got)
				}
			}
			got, err := s.Get(r.ID)
			if err != nil || got.State != tc.final {
				t.Fatalf("final: %v %+v, want %s", err, got, tc.final)
			}
			for _, to := range []State{New, Answered, Declined} {
				if CanMove(tc.final, to) != (tc.final == New && to != New) {
					t.Errorf("CanMove(%s, %s) = %v", tc.final, to, CanMove(tc.final, to))
				}
			}
		})
	}
}

// TestSides: a request is decided only on its own side, a sent one is not
// marked for delivery, and an unknown id is ErrNotFound.
func TestSides(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	r := sent(NewID())
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(r); !errors.Is(err, ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	d := Decision{State: Answered, Contact: "Jo", By: "gp"}
	if _, err := s.Decide(r.ID, Received, d, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other side: %v", err)
	}
	if _, err := s.Decide(NewID(), Sent, d, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	got, err := s.Decide(r.ID, Sent, d, t0)
	if err != nil || got.Undelivered {
		t.Fatalf("sent side: %v %+v", err, got)
	}
	if got, err := s.Decide(r.ID, Sent, d, t0); !errors.Is(err, ErrDecided) || !got.Same(d) {
		t.Fatalf("repeat: %v %+v", err, got)
	}
	if err := s.Delete(r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestCreateRefusesInvalid: what Validate refuses is never stored.
func TestCreateRefusesInvalid(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	for name, mut := range map[string]func(*Request){
		"bad id":              func(r *Request) { r.ID = "x" },
		"bad side":            func(r *Request) { r.Side = "both" },
		"no peer":             func(r *Request) { r.Peer = "" },
		"no remote id":        func(r *Request) { r.RemoteID = "" },
		"no requester":        func(r *Request) { r.Requester = "" },
		"no local id":         func(r *Request) { r.LocalID = "" },
		"long message":        func(r *Request) { r.Message = strings.Repeat("m", MaxMessageLen+1) },
		"control in message":  func(r *Request) { r.Message = "a\x00b" },
		"invalid utf-8":       func(r *Request) { r.Message = "\xff" },
		"new with a contact":  func(r *Request) { r.Contact = "Jo" },
		"no created time":     func(r *Request) { r.Created = time.Time{} },
		"updated before made": func(r *Request) { r.Updated = t0.Add(-time.Second) },
	} {
		r := received(NewID())
		mut(&r)
		if err := s.Create(r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if rs, _ := s.List(Received, nil, 0); len(rs) != 0 {
		t.Fatalf("stored %d", len(rs))
	}
}

// TestDurableAcrossReopen: what a call acknowledged is there after the
// store is closed and opened again (as after a restart or kill -9: bbolt
// commits with fsync before a call returns), decisions and delivery state
// included.
func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s := open(t, path)
	a, b, c := received(NewID()), received(NewID()), sent(NewID())
	b.Created, b.Updated = t0.Add(time.Minute), t0.Add(time.Minute)
	for _, r := range []Request{a, b, c} {
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Decide(a.ID, Received, Decision{State: Declined, Reason: "not known here", By: "jo"}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(a.ID, false, false, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Get(a.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
	s = open(t, path)
	got, err := s.Get(a.ID)
	if err != nil || got.State != Declined || got.Reason != "not known here" || !got.Undelivered || got.Attempts != 1 || !got.NextAttempt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("after reopen: %v %+v", err, got)
	}
	rs, err := s.List(Received, nil, 0)
	if err != nil || len(rs) != 2 || rs[0].ID != b.ID || rs[1].ID != a.ID {
		t.Fatalf("list newest first: %v %+v", err, rs)
	}
	if rs, _ := s.List(Sent, nil, 0); len(rs) != 1 || rs[0].ID != c.ID {
		t.Fatalf("sent: %+v", rs)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", err, fi.Mode())
	}
}

// TestDelivery: a holder's decision is due until delivered or given up,
// and not before its next attempt.
func TestDelivery(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	a, b := received(NewID()), received(NewID())
	for _, r := range []Request{a, b} {
		s.Create(r)
		s.Decide(r.ID, Received, Decision{State: Answered, Contact: "Jo", By: "jo"}, t0)
	}
	due := func(at time.Time) int {
		rs, err := s.Due(at)
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if due(t0) != 2 {
		t.Fatal("both due at once")
	}
	s.Delivered(a.ID, false, false, t0.Add(time.Minute))
	s.Delivered(b.ID, false, true, time.Time{})
	if due(t0) != 0 || due(t0.Add(time.Minute)) != 1 {
		t.Fatal("retry pacing")
	}
	if got, _ := s.Get(b.ID); !got.GaveUp || got.Undelivered {
		t.Fatalf("gave up: %+v", got)
	}
	s.Delivered(a.ID, true, false, time.Time{})
	if due(t0.Add(time.Hour)) != 0 {
		t.Fatal("delivered still due")
	}
}

// TestDeleteStale: retention deletes what was last changed before the
// cutoff, at most max at a time, and keeps the rest.
func TestDeleteStale(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	var ids []string
	for i := range 5 {
		r := received(NewID())
		r.Created = t0.Add(time.Duration(i) * 24 * time.Hour)
		r.Updated = r.Created
		s.Create(r)
		ids = append(ids, r.ID)
	}
	// The oldest is answered later: its last change moves.
	s.Decide(ids[0], Received, Decision{State: Answered, Contact: "Jo", By: "jo"}, t0.Add(10*24*time.Hour))
	gone, err := s.DeleteStale(t0.Add(3*24*time.Hour), 1)
	if err != nil || len(gone) != 1 {
		t.Fatalf("first batch: %v %d", err, len(gone))
	}
	more, _ := s.DeleteStale(t0.Add(3*24*time.Hour), 10)
	gone = append(gone, more...)
	if len(gone) != 2 {
		t.Fatalf("deleted %d, want 2", len(gone))
	}
	for _, r := range gone {
		if r.ID != ids[1] && r.ID != ids[2] {
			t.Fatalf("deleted %s", r.ID)
		}
	}
	if rs, _ := s.List(Received, nil, 0); len(rs) != 3 {
		t.Fatalf("kept %d", len(rs))
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{NewID(): true, "": false, "AAAAAAAAAAAAAAAAAAAAAA": true, "AAAAAAAAAAAAAAAAAAAAAB": false, "AAAAAAAAAAAAAAAAAAAAA": false, "../../etc/passwd": false} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

// FuzzDecode: a stored value either decodes to a request that validates
// and encodes back to the same request, or is refused with ErrInvalid.
func FuzzDecode(f *testing.F) {
	for _, r := range []Request{received("AAAAAAAAAAAAAAAAAAAAAA"), sent("AAAAAAAAAAAAAAAAAAAAAA")} {
		b, _ := json.Marshal(r)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded but invalid: %v", err)
		}
		b, _ := json.Marshal(r)
		r2, err := Decode(b)
		if err != nil || r2.ID != r.ID || r2.State != r.State || r2.Contact != r.Contact || r2.Message != r.Message {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestCrashCopy: the file as it stands on disk while the store is still
// open — what a kill -9 right after a call returned leaves — holds every
// acknowledged write: bbolt has fsynced each transaction before the call
// returned.
func TestCrashCopy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "c.db"))
	var ids []string
	for i := range 20 {
		r := received(NewID())
		if err := s.Create(r); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Decide(r.ID, Received, Decision{State: Answered, Contact: "Jo", By: "jo"}, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, r.ID)
	}
	b, err := os.ReadFile(filepath.Join(dir, "c.db")) // no Close: the process "died"
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "copy.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, filepath.Join(dir, "copy.db"))
	for i, id := range ids {
		r, err := c.Get(id)
		if err != nil || (i%2 == 0) != (r.State == Answered) {
			t.Fatalf("request %d after the crash: %v %+v", i, err, r)
		}
	}
}

// TestBrokeredShapes: requests through a broker keep the right fields on
// each side — the broker's relayed request nothing about the person, the
// holder's the origin, the requester's the named holder only with consent —
// and decisions through a broker carry consent and are delivered onward
// from the relayed side.
func TestBrokeredShapes(t *testing.T) {
	relayed := func() Request { return relayedReq(NewID()) }
	viaBroker := func() Request {
		r := sent(NewID())
		r.Brokered = true
		return r
	}
	atHolder := func() Request {
		r := received(NewID())
		r.Origin, r.OriginAgency = "school", "Riverside School"
		return r
	}
	tests := []struct {
		name string
		r    func() Request
		ok   bool
	}{
		{"relayed", relayed, true},
		{"relayed with a lookup key", func() Request { r := relayed(); r.Lookup[0] = 1; return r }, false},
		{"relayed with a local id", func() Request { r := relayed(); r.LocalID = "x"; return r }, false},
		{"relayed without a holder", func() Request { r := relayed(); r.Holder = ""; return r }, false},
		{"relayed without the requester's id", func() Request { r := relayed(); r.RemoteID = ""; return r }, false},
		{"sent through a broker", viaBroker, true},
		{"named without consent", func() Request { r := viaBroker(); r.Named = "clinic"; return r }, false},
		{"named not through a broker", func() Request {
			r := sent(NewID())
			r.State, r.Contact, r.Consent, r.Named = Answered, "Jo", true, "clinic"
			return r
		}, false},
		{"named with consent", func() Request {
			r := viaBroker()
			r.State, r.Contact, r.Consent, r.Named, r.NamedAgency = Answered, "Jo", true, "clinic", "Bay Clinic"
			return r
		}, true},
		{"consent on a decline", func() Request {
			r := viaBroker()
			r.State, r.Reason, r.Consent = Declined, "no", true
			return r
		}, false},
		{"received with its origin", atHolder, true},
		{"origin on the sent side", func() Request { r := viaBroker(); r.Origin = "school"; return r }, false},
		{"holder on the received side", func() Request { r := atHolder(); r.Holder = "clinic"; return r }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r().Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok %v", err, tc.ok)
			}
		})
	}

	s := open(t, filepath.Join(t.TempDir(), "c.db"))
	r := relayed()
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
	d := Decision{State: Answered, Contact: "Jo, clinic nurse, 01632 960999", By: "clinic", Consent: true}
	got, err := s.Decide(r.ID, Relayed, d, t0.Add(time.Minute))
	if err != nil || !got.Undelivered || !got.Consent || !got.Same(d) {
		t.Fatalf("decided %+v, %v", got, err)
	}
	if got.Same(Decision{State: Answered, Contact: d.Contact}) {
		t.Fatal("a decision without consent is the same as one with it")
	}
	due, err := s.Due(t0.Add(time.Minute))
	if err != nil || len(due) != 1 || due[0].ID != r.ID {
		t.Fatalf("due %+v, %v", due, err)
	}
	counts, undelivered, err := s.Counts()
	if err != nil || counts[Relayed][Answered] != 1 || undelivered != 1 {
		t.Fatalf("counts %v %d %v", counts, undelivered, err)
	}
}

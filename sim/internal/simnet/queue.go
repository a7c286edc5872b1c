package simnet

// Event is one scheduled action. The simulator interprets Kind, Node, From,
// Gen and Msg; the queue only orders by (At, seq).
type Event struct {
	At   int64 // virtual time, nanoseconds since the start of the run
	seq  uint64
	Kind uint8
	// Class is a free byte for the caller (e.g. the message class).
	Class uint8
	Node  int32
	From  int32
	Gen   uint32
	Msg   []byte
}

// Queue is a min-heap of events keyed by (At, insertion sequence), so that
// two events at the same virtual time run in the order they were scheduled.
// The zero value is an empty queue at time 0.
type Queue struct {
	h   []Event
	seq uint64
	now int64
}

// Now returns the virtual time of the last event popped.
func (q *Queue) Now() int64 { return q.now }

// Len returns the number of pending events.
func (q *Queue) Len() int { return len(q.h) }

// Push schedules e. An event in the past (e.At < Now) runs at Now.
func (q *Queue) Push(e Event) {
	if e.At < q.now {
		e.At = q.now
	}
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	q.up(len(q.h) - 1)
}

// Peek returns the time of the next event and whether there is one.
func (q *Queue) Peek() (int64, bool) {
	if len(q.h) == 0 {
		return 0, false
	}
	return q.h[0].At, true
}

// Pop removes the earliest event, advances Now to its time and returns it.
func (q *Queue) Pop() (Event, bool) {
	if len(q.h) == 0 {
		return Event{}, false
	}
	e := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h[n] = Event{}
	q.h = q.h[:n]
	if n > 0 {
		q.down(0)
	}
	q.now = e.At
	return e, true
}

// AdvanceTo moves Now forward to t without running events (used at the end
// of a run). It never moves the clock backwards.
func (q *Queue) AdvanceTo(t int64) {
	if t > q.now {
		q.now = t
	}
}

func (q *Queue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.At != b.At {
		return a.At < b.At
	}
	return a.seq < b.seq
}

func (q *Queue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *Queue) down(i int) {
	n := len(q.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
}

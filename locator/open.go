package locator

import (
	"errors"
	"fmt"
	"time"
)

// Found is an entry that opened and whose holder signature verified.
type Found struct {
	Entry   *Entry
	Holding Holding
}

// LookupOpen is the reader's whole path: it looks up the live entries under
// key, opens each with seal, checks the holder against keys, and returns
// only those that pass. Every entry that fails to open or verify is counted
// in s (NoteRejected with its reason) and left out — never shown; rejected
// says how many were.
func LookupOpen(s Store, now time.Time, key LookupKey, seal SealKey, keys NodeKeys) (found []Found, rejected int, err error) {
	es, err := s.Lookup(now, key)
	if err != nil {
		return nil, 0, fmt.Errorf("locator: lookup: %w", err)
	}
	out := make([]Found, 0, len(es))
	for _, e := range es {
		h, err := e.Open(seal, keys)
		if err != nil {
			r := ReasonOf(err)
			if !errors.Is(err, r.Err()) {
				r = ReasonSealBroken
			}
			s.NoteRejected(r)
			rejected++
			continue
		}
		out = append(out, Found{Entry: e, Holding: h})
	}
	return out, rejected, nil
}

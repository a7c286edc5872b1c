package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Action names what an [Event] records. The constants are the actions the node
// writes today; any non-empty lower-case, hyphenated word is accepted so that
// new actions need no change here.
type Action string

// The actions of issue 4, item 8.
const (
	ActionEvaluate               Action = "evaluate"                 // the issuer evaluated blinded elements
	ActionLookup                 Action = "lookup"                   // a lookup by lookup key
	ActionContactRequestSent     Action = "contact-request-sent"     // this node asked a holder for contact
	ActionContactRequestReceived Action = "contact-request-received" // a holder received such a request
	ActionContactRequestAnswered Action = "contact-request-answered" // the holder answered it with a named contact (a person, or its policy)
	ActionContactRequestDeclined Action = "contact-request-declined" // the holder declined it with a reason
	ActionContactAnswerSent      Action = "contact-answer-sent"      // the holder's decision reached the requester (ok), or was refused for good (denied)
	ActionContactAnswerReceived  Action = "contact-answer-received"  // the requester received the holder's decision
	ActionContactRequestExpired  Action = "contact-request-expired"  // a contact request was deleted at the end of its retention
	ActionContactRequestRelayed  Action = "contact-request-relayed"  // a broker relayed a request to a shielded holder (or refused to: denied); no subject
	ActionContactAnswerRelayed   Action = "contact-answer-relayed"   // a broker passed a shielded holder's decision on to the requester; no subject
	ActionEntriesRelayed         Action = "entries-relayed"          // a broker published a shielded node's entries (Count of them); no subject
	ActionWatch                  Action = "watch"                    // a practitioner asked to be told of new involvement
	ActionUnwatch                Action = "unwatch"                  // the watch ended
	ActionNotify                 Action = "notify"                   // a watcher was told of new involvement
	ActionWatchStart             Action = "watch-start"              // a practitioner started (or renewed) a stored watch
	ActionWatchStop              Action = "watch-stop"               // a practitioner stopped a stored watch
	ActionWatchExpire            Action = "watch-expire"             // a stored watch reached its expiry and was deleted
	ActionWatchSeen              Action = "watch-seen"               // a practitioner marked a stored watch's notices seen
	ActionMatch                  Action = "match"                    // another agency appeared under one of our lookup keys
	ActionRecordCreate           Action = "record-create"            // a local record was created
	ActionRecordUpdate           Action = "record-update"            // a local record was changed
	ActionRecordDelete           Action = "record-delete"            // a local record was removed
	ActionObjection              Action = "objection"                // the subject objected at this agency: every record of theirs is withdrawn (tombstoned) and never published while it stands
	ActionObjectionWithdrawn     Action = "objection-withdrawn"      // the subject's objection was withdrawn: their records still held are published again
	ActionRecordWithheld         Action = "record-withheld"          // a record written for a subject whose objection stands was stored, not published
	ActionSubjectAccess          Action = "subject-access"           // an auditor searched the log for a subject
	ActionLogin                  Action = "login"                    // a user signed in (or failed to)
	ActionUserChange             Action = "user-change"              // a user or API token was added or removed
)

// Outcome says how the audited operation ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK      Outcome = "ok"      // done
	OutcomeDenied  Outcome = "denied"  // refused by policy, role or rate limit
	OutcomeInvalid Outcome = "invalid" // refused because the input was wrong
	OutcomeError   Outcome = "error"   // the node failed
)

// Event is one audited operation: one line of the log.
//
// No field may hold an NHS number, a token, a lookup key, a seal key or any
// other key. The person concerned is named only by [SubjectRef]s, which are
// keyed hashes of lookup keys (see the package documentation). Append refuses
// an event whose free-text fields (Purpose, Detail) contain a run of ten or
// more digits, the shape of an NHS number.
type Event struct {
	// Time of the operation, stored in UTC. Append fills a zero Time from
	// the log's clock.
	Time time.Time `json:"time"`
	// Actor is who acted: "user:<name>", "token:<name>" or "node:<id>".
	Actor string `json:"actor"`
	// Action is what was done.
	Action Action `json:"action"`
	// Purpose is the token purpose involved, e.g. "safeguarding".
	Purpose string `json:"purpose,omitempty"`
	// Count is how many items the operation involved: elements evaluated,
	// entries found, records imported.
	Count int `json:"count,omitempty"`
	// Outcome is how it ended.
	Outcome Outcome `json:"outcome"`
	// Subjects are the keyed references of the people concerned, when the
	// node can know them (never for an evaluation: the issuer sees only
	// blinded elements).
	Subjects []SubjectRef `json:"subjects,omitempty"`
	// Peer is the other node involved, if any: the holder asked for
	// contact, the node that forwarded an evaluation.
	Peer string `json:"peer,omitempty"`
	// Record is the agency's own local record id, for record changes.
	Record string `json:"record,omitempty"`
	// Detail is a short human note, e.g. the reason for a denial. Never
	// request input.
	Detail string `json:"detail,omitempty"`
}

// Errors from Append's validation.
var (
	// ErrInvalidEvent means an event lacks a required field.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrIdentifierInEvent means a free-text field looks like it holds an
	// NHS number; the event is refused rather than written.
	ErrIdentifierInEvent = errors.New("audit: event text contains a run of 10 digits")
)

// validate checks the invariants of an event before it is written.
func (e *Event) validate() error {
	if e.Actor == "" {
		return fmt.Errorf("%w: no actor", ErrInvalidEvent)
	}
	if !validAction(string(e.Action)) {
		return fmt.Errorf("%w: action must be a lower-case hyphenated word", ErrInvalidEvent)
	}
	if e.Outcome == "" {
		return fmt.Errorf("%w: no outcome", ErrInvalidEvent)
	}
	if e.Count < 0 {
		return fmt.Errorf("%w: negative count", ErrInvalidEvent)
	}
	for _, s := range []string{e.Purpose, e.Detail, e.Record, e.Actor, e.Peer} {
		if len(s) > maxField {
			return fmt.Errorf("%w: a field is over %d bytes", ErrInvalidEvent, maxField)
		}
	}
	if len(e.Subjects) > maxSubjects {
		return fmt.Errorf("%w: over %d subjects", ErrInvalidEvent, maxSubjects)
	}
	for _, s := range []string{e.Purpose, e.Detail} {
		if hasDigitRun(s, 10) {
			return ErrIdentifierInEvent
		}
	}
	return nil
}

const (
	maxField    = 512
	maxSubjects = 256
)

func validAction(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// hasDigitRun reports whether s holds n or more ASCII digits in a row,
// ignoring single spaces and hyphens between them (the ways an NHS number is
// written: 9990000018, 999 000 0018, 999-000-0018).
func hasDigitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			run++
			if run >= n {
				return true
			}
		case (c == ' ' || c == '-') && run > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// a separator inside a number: keep counting
		default:
			run = 0
		}
	}
	return false
}

// SubjectRef names a person in the audit log without identifying them:
// the first 16 bytes of HMAC-SHA256(audit key, "signpost/audit-subject/v1" ‖
// lookup key). It is written as 32 lower-case hex digits.
//
// Only the node that holds the audit key can compute a ref, and only from a
// lookup key, which in turn only the federation's issuer can help compute
// from an NHS number (rate-limited and audited). A leaked log therefore gives
// away neither the numbers nor a way to test guesses against them.
type SubjectRef [16]byte

// MarshalText writes the ref as hex.
func (r SubjectRef) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(r[:])), nil
}

// UnmarshalText reads a ref written by MarshalText.
func (r *SubjectRef) UnmarshalText(b []byte) error {
	if len(b) != 2*len(r) {
		return fmt.Errorf("audit: subject ref must be %d hex digits", 2*len(r))
	}
	if _, err := hex.Decode(r[:], b); err != nil {
		return errors.New("audit: subject ref is not hex")
	}
	return nil
}

// String is the hex form.
func (r SubjectRef) String() string { return hex.EncodeToString(r[:]) }

// ParseSubjectRef parses the hex form of a ref.
func ParseSubjectRef(s string) (SubjectRef, error) {
	var r SubjectRef
	err := r.UnmarshalText([]byte(s))
	return r, err
}

// subjectLabel separates subject refs from any other use of the audit key.
const subjectLabel = "signpost/audit-subject/v1"

// RefFor computes the subject ref of a lookup key under an audit key (the
// contents of the log's key file). [Log.Ref] is the same with the log's key;
// RefFor serves tools that query a log without opening it for writing.
func RefFor(key, lookupKey []byte) SubjectRef { return refFor(key, lookupKey) }

func refFor(key, lookupKey []byte) SubjectRef {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subjectLabel))
	m.Write(lookupKey)
	var r SubjectRef
	copy(r[:], m.Sum(nil))
	return r
}

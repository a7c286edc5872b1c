package audit_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, audit.FileName)

	log, err := audit.Open(path, audit.DefaultConfig())
	if err != nil {
		panic(err)
	}
	defer log.Close()

	// The node records a lookup under the subject ref of its lookup key.
	lookupKey := bytes.Repeat([]byte{0x42}, 16)
	when := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec, err := log.Append(audit.Event{
		Time: when, Actor: "user:alice", Action: audit.ActionLookup,
		Purpose: "safeguarding", Count: 2, Outcome: audit.OutcomeOK,
		Subjects: log.Refs(lookupKey),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("index", rec.Index, "size", rec.Head.Size)

	// Who looked this person up? The node turns the NHS number into the
	// same lookup key (through the issuer) and asks by ref.
	found, _ := log.Subject(log.Ref(lookupKey))
	for _, e := range found {
		fmt.Println(e.Index, e.Actor, e.Action, e.Purpose)
	}

	// Anyone can verify the file.
	f, _ := os.Open(path)
	defer f.Close()
	head, err := audit.Verify(f)
	fmt.Println("verified", head.Size, err)
	// Output:
	// index 0 size 1
	// 0 user:alice lookup safeguarding
	// verified 1 <nil>
}

// Package audittest holds the table of tamperings of an audit log that the
// tests of every party that checks one share: the log's own Open and
// Verify (node/internal/audit), `signpost audit verify` (node/admin) and
// the node at start (node/stack). Each case is what someone with write
// access to the data directory but without the node's key can do to the
// log file. It is used by tests only.
package audittest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

// Case is one tampering: Apply turns the intact log into the tampered one;
// every verifier must refuse the result with an error wrapping Want.
type Case struct {
	Name  string
	Apply func(t testing.TB, log []byte) []byte
	Want  error
}

// line is a decoded log line.
type line struct {
	I     uint64          `json:"i"`
	Event json.RawMessage `json:"event"`
	Root  audit.Hash      `json:"root"`
	Sig   []byte          `json:"sig,omitempty"`
}

func split(t testing.TB, log []byte) []line {
	t.Helper()
	var out []line
	for _, l := range bytes.SplitAfter(log, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var ln line
		if err := json.Unmarshal(l, &ln); err != nil {
			t.Fatalf("audittest: not a log line: %v", err)
		}
		out = append(out, ln)
	}
	return out
}

// encode writes a line in the log's canonical form.
func encode(ls []line) []byte {
	var b []byte
	for _, l := range ls {
		b = fmt.Appendf(b, `{"i":%d,"event":%s,"root":"%s"`, l.I, l.Event, l.Root)
		if len(l.Sig) > 0 {
			b = fmt.Appendf(b, `,"sig":"%s"`, base64.StdEncoding.EncodeToString(l.Sig))
		}
		b = append(b, "}\n"...)
	}
	return b
}

// recompute sets every line's index and root from its events, as an
// attacker without the key can, leaving signatures as given.
func recompute(ls []line) {
	var leaves []audit.Hash
	for i := range ls {
		leaves = append(leaves, audit.LeafHash(ls[i].Event))
		ls[i].I = uint64(i)
		ls[i].Root = audit.RootHash(leaves)
	}
}

// forged is an event that was never audited.
func forged(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"time":"2026-11-25T09:30:%02dZ","actor":"user:mallory","action":"lookup","outcome":"ok"}`, i%60))
}

// appendForged appends a forged event with a correct index and root.
func appendForged(ls []line, sig func(h audit.TreeHead) []byte) []line {
	ls = append(ls, line{Event: forged(len(ls))})
	recompute(ls)
	last := &ls[len(ls)-1]
	last.Sig = sig(audit.TreeHead{Size: last.I + 1, Root: last.Root})
	return ls
}

// attackerKey is a key that is not the node's.
var attackerKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x66}, ed25519.SeedSize))

// Cases returns the table. The intact log must have at least 6 lines, all
// signed.
func Cases() []Case {
	edit := func(pick func(ls []line) []line) func(testing.TB, []byte) []byte {
		return func(t testing.TB, log []byte) []byte { return encode(pick(split(t, log))) }
	}
	return []Case{
		{"edit a byte of an event", func(t testing.TB, log []byte) []byte {
			ls := split(t, log)
			ev := bytes.Clone(ls[2].Event)
			ev[bytes.IndexByte(ev, ':')+3] ^= 1 // inside the time stamp's digits
			ls[2].Event = ev
			return encode(ls)
		}, audit.ErrTampered},
		{"edit a byte of a root", edit(func(ls []line) []line { ls[3].Root[7] ^= 1; return ls }), audit.ErrTampered},
		{"edit a byte of a signature", edit(func(ls []line) []line { ls[4].Sig[9] ^= 1; return ls }), audit.ErrTampered},
		{"delete a line", edit(func(ls []line) []line { return append(ls[:2:2], ls[3:]...) }), audit.ErrOutOfOrder},
		{"swap two lines", edit(func(ls []line) []line { ls[2], ls[3] = ls[3], ls[2]; return ls }), audit.ErrOutOfOrder},
		{"duplicate a line", edit(func(ls []line) []line {
			return append(ls[:3:3], append([]line{ls[2]}, ls[3:]...)...)
		}), audit.ErrOutOfOrder},
		{"duplicate the last line", edit(func(ls []line) []line { return append(ls, ls[len(ls)-1]) }), audit.ErrOutOfOrder},
		{"truncate whole lines", edit(func(ls []line) []line { return ls[:len(ls)-2] }), audit.ErrTruncated},
		{"truncate to nothing", func(testing.TB, []byte) []byte { return nil }, audit.ErrTruncated},
		{"truncate inside the last line", func(_ testing.TB, log []byte) []byte { return log[:len(log)-12] }, audit.ErrTruncated},
		{"append a forged event with a valid root, unsigned", edit(func(ls []line) []line {
			return appendForged(ls, func(audit.TreeHead) []byte { return nil })
		}), audit.ErrTampered},
		{"append a forged event with a valid root and a copied signature", edit(func(ls []line) []line {
			prev := ls[len(ls)-1].Sig
			return appendForged(ls, func(audit.TreeHead) []byte { return prev })
		}), audit.ErrTampered},
		{"append a forged event signed by another key", edit(func(ls []line) []line {
			return appendForged(ls, func(h audit.TreeHead) []byte { return ed25519.Sign(attackerKey, h.Checkpoint()) })
		}), audit.ErrTampered},
		{"append a forged event with a copied root and signature", edit(func(ls []line) []line {
			last := ls[len(ls)-1]
			return append(ls, line{I: last.I + 1, Event: forged(0), Root: last.Root, Sig: last.Sig})
		}), audit.ErrTampered},
		{"rewrite an event and recompute the later roots, keeping the signatures", edit(func(ls []line) []line {
			ls[1].Event = forged(1)
			recompute(ls)
			return ls
		}), audit.ErrTampered},
		{"rewrite an event and recompute the later roots, unsigned", edit(func(ls []line) []line {
			ls[1].Event = forged(1)
			recompute(ls)
			for i := 1; i < len(ls); i++ {
				ls[i].Sig = nil
			}
			return ls
		}), audit.ErrTampered},
		{"strip all signatures", edit(func(ls []line) []line {
			for i := range ls {
				ls[i].Sig = nil
			}
			return ls
		}), audit.ErrTampered},
		{"CRLF line ends", func(_ testing.TB, log []byte) []byte {
			return bytes.ReplaceAll(log, []byte("\n"), []byte("\r\n"))
		}, audit.ErrMalformed},
		{"CRLF on the last line", func(_ testing.TB, log []byte) []byte {
			return append(log[:len(log)-1], "\r\n"...)
		}, audit.ErrMalformed},
		{"an unsigned forged tail before a torn final line", func(t testing.TB, log []byte) []byte {
			ls := appendForged(split(t, log), func(audit.TreeHead) []byte { return nil })
			return append(encode(ls), `{"i":`...)
		}, audit.ErrTampered},
		{"a torn line, then a forged line", func(t testing.TB, log []byte) []byte {
			ls := appendForged(split(t, log), func(audit.TreeHead) []byte { return nil })
			torn := append(bytes.Clone(log), `{"i":`...)
			return append(torn, encode(ls[len(ls)-1:])...)
		}, audit.ErrMalformed},
	}
}

// WriteLog writes a log of n signed events at dir/audit.log with its public
// key and head files, as a node leaves them at a clean stop, and returns
// the log's path and final head.
func WriteLog(t testing.TB, dir string, signer ed25519.PrivateKey, n int) (string, audit.TreeHead) {
	t.Helper()
	path := filepath.Join(dir, audit.FileName)
	if err := audit.EnsurePublicKey(filepath.Join(dir, audit.PublicKeyFileName), signer.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(path, audit.Config{Signer: signer, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if _, err := l.Append(audit.Event{Time: when.Add(time.Duration(i) * time.Second), Actor: "user:alice",
			Action: audit.ActionLookup, Purpose: "safeguarding", Count: i, Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, head
}

// Refused fails t unless err wraps want and names a line.
func Refused(t testing.TB, err, want error) {
	t.Helper()
	var le *audit.LineError
	if !errors.Is(err, want) || !errors.As(err, &le) || le.Line == 0 {
		t.Fatalf("got %v, want %v naming a line", err, want)
	}
}

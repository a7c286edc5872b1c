package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheckPassword: the PHC hash parser never panics and refuses (with
// ErrBadHash) whatever is not a sane argon2id hash; cost parameters are
// bounded before any hashing, so a corrupt users file cannot make the node
// allocate gigabytes.
func FuzzCheckPassword(f *testing.F) {
	f.Add("correct horse battery", hashPassword([]byte("correct horse battery"), TestArgon2Params))
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("x", "$argon2id$v=19$m=4194304,t=100,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, pw, phc string) {
		// Keep the fuzzer fast: skip inputs whose cost is large but valid.
		var m, tc uint32
		var p uint8
		if n, _ := fmtSscanf(phc, &m, &tc, &p); n == 3 && (m > 4096 || tc > 3) {
			t.Skip()
		}
		ok, err := checkPassword([]byte(pw), phc)
		if err != nil && !errors.Is(err, ErrBadHash) {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
	})
}

// FuzzStoreFile: a corrupt users file is refused with an error, never a
// panic, and a file the store accepts round-trips through a save.
func FuzzStoreFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"users":[],"tokens":[]}`))
	f.Add([]byte(`{"version":1,"users":[{"id":"a","name":"alice","role":"practitioner","created":"2026-11-25T09:00:00Z","hash":"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}],"tokens":[{"id":"b","name":"sys","role":"operator","created":"2026-11-25T09:00:00Z","hash":"00"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), UsersFileName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(path, TestArgon2Params, nil)
		if err != nil {
			return
		}
		users, err := s.Users()
		if err != nil {
			t.Fatalf("opened but cannot list: %v", err)
		}
		s.CheckToken("spt_x")
		s.mu.Lock()
		err = s.saveLocked()
		s.mu.Unlock()
		if err != nil {
			t.Fatalf("cannot save what it opened: %v", err)
		}
		again, _ := s.Users()
		a, _ := json.Marshal(users)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("users changed across a save:\n%s\n%s", a, b)
		}
	})
}

// fmtSscanf reads the cost parameters of a PHC string, if it has them.
func fmtSscanf(phc string, m, tc *uint32, p *uint8) (int, error) {
	i := bytes.Index([]byte(phc), []byte("$m="))
	if i < 0 {
		return 0, errors.New("no parameters")
	}
	return sscanf(phc[i+1:], m, tc, p)
}

func sscanf(s string, m, tc *uint32, p *uint8) (int, error) {
	return fmt.Sscanf(s, "m=%d,t=%d,p=%d", m, tc, p)
}

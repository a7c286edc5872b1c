package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. They are stored with every
// hash (in the PHC string format), so raising them affects new passwords
// only, and old hashes keep verifying.
type Argon2Params struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8  // lanes
	SaltLen uint32 // bytes of per-user random salt
	KeyLen  uint32 // bytes of output
}

// DefaultArgon2Params are RFC 9106's second recommended option for
// memory-constrained environments: argon2id, t=3, m=64 MiB, p=4, a 128-bit
// salt and a 256-bit tag. On the reference 2-core VM one hash takes about
// the figure in docs/BENCHMARKS.md (tens of milliseconds), and the
// Authenticator lets at most two run at once, so sign-in cannot be used to
// exhaust memory.
var DefaultArgon2Params = Argon2Params{Time: 3, Memory: 64 * 1024, Threads: 4, SaltLen: 16, KeyLen: 32}

// TestArgon2Params are cheap parameters for tests only.
var TestArgon2Params = Argon2Params{Time: 1, Memory: 64, Threads: 1, SaltLen: 16, KeyLen: 32}

// idKey is argon2.IDKey; the tests count its work to prove that a wrong
// username costs what a wrong password does.
var idKey = argon2.IDKey

// ErrBadHash means a stored password hash cannot be parsed.
var ErrBadHash = errors.New("auth: malformed password hash")

// hashPassword returns the PHC string
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt b64>$<hash b64>.
func hashPassword(password []byte, p Argon2Params) string {
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := idKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// checkPassword reports whether password matches the PHC hash, comparing the
// derived keys in constant time. Stored parameters are bounded (at most
// 256 MiB, 16 passes, 16 lanes) before any hashing, so a corrupt users file
// cannot make the node allocate without limit.
func checkPassword(password []byte, phc string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, ErrBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, ErrBadHash
	}
	if p.Time == 0 || p.Time > 16 || p.Threads == 0 || p.Threads > 16 || p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<18 {
		return false, ErrBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, ErrBadHash
	}
	got := idKey(password, salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

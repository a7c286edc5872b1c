package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors of the user and token store.
var (
	ErrUnknownRole    = errors.New("auth: unknown role")
	ErrExists         = errors.New("auth: name already in use")
	ErrNotFound       = errors.New("auth: no such user or token")
	ErrBadName        = errors.New("auth: invalid name")
	ErrWeakPassword   = errors.New("auth: password too short")
	ErrBadCredentials = errors.New("auth: wrong username or password")
	ErrBadToken       = errors.New("auth: unknown or revoked API token")
	// ErrTokenExpired: the API token is past its expiry; errors.As gives
	// a *TokenExpiredError naming it.
	ErrTokenExpired = errors.New("auth: API token expired")
)

// TokenExpiredError says which API token expired, and when.
type TokenExpiredError struct {
	Name    string
	Expired time.Time
}

func (e *TokenExpiredError) Error() string {
	return fmt.Sprintf("auth: API token %q expired at %s", e.Name, e.Expired.UTC().Format(time.RFC3339))
}

// Advice is what the token's user is told: which token, since when, and
// how to get a new one.
func (e *TokenExpiredError) Advice() string {
	return fmt.Sprintf("the API token %q expired at %s; an operator can issue a new one with `signpost user rotate --name %s`",
		e.Name, e.Expired.UTC().Format(time.RFC3339), e.Name)
}

// Is makes errors.Is(err, ErrTokenExpired) true.
func (e *TokenExpiredError) Is(target error) bool { return target == ErrTokenExpired }

// DefaultTokenTTL is how long an API token is valid unless its creator says
// otherwise: a leaked token stops working on its own, and rotation becomes
// a habit.
const DefaultTokenTTL = 90 * 24 * time.Hour

// MaxTokenTTL bounds the validity an API token may be given.
const MaxTokenTTL = 2 * 366 * 24 * time.Hour

// UsersFileName is the store's usual name in the node's data directory.
const UsersFileName = "users.json"

// MinPasswordLen is the shortest password AddUser accepts, in bytes.
const MinPasswordLen = 12

// TokenPrefix starts every API token, so that a leaked token is easy to
// recognise (and to scan for).
const TokenPrefix = "spt_"

// User is a local user account. The password hash never leaves the store.
type User struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	Hash    string    `json:"hash"` // argon2id PHC string
}

// APIToken describes an API token for a system. The token itself is shown
// once, by AddToken or RotateToken; the store keeps only its SHA-256.
type APIToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	// Expires is when the token stops working. A token from before
	// expiries (zero) expires DefaultTokenTTL after Created.
	Expires time.Time `json:"expires,omitzero"`
	// DailyLookups is this system's own daily lookup quota at the node; 0
	// means the node's daily_token_lookups.
	DailyLookups int    `json:"dailyLookups,omitempty"`
	Hash         string `json:"hash"` // hex SHA-256 of the token
}

// ExpiresAt returns when t stops working.
func (t APIToken) ExpiresAt() time.Time {
	if t.Expires.IsZero() {
		return t.Created.Add(DefaultTokenTTL)
	}
	return t.Expires
}

// file is the on-disk form of the store.
type file struct {
	Version int        `json:"version"`
	Users   []User     `json:"users"`
	Tokens  []APIToken `json:"tokens"`
}

// Store keeps users and API tokens in one small JSON file (mode 0600),
// rewritten atomically (temporary file, fsync, rename, fsync of the
// directory) on every change. It re-reads the file when it changes on disk,
// so `signpost user add` takes effect on a running node. It is safe for
// concurrent use within a process; two processes changing the file at the
// same instant may lose one change (the admin CLI is the only writer).
type Store struct {
	path   string
	params Argon2Params
	now    func() time.Time
	dummy  string // a hash to check against for unknown users: same cost

	mu       sync.Mutex
	data     file
	loaded   fileStamp
	loadedAt time.Time // wall clock when loaded was read (not s.now: it is compared with the file system's clock)
}

// fileStamp is what a stat says of the file: enough to know it has not
// changed, except within racyWindow of a change (see reloadLocked).
type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

// racyWindow bounds the file system's timestamp granularity. A write that
// lands within it of the previous one may leave the same size and time
// (Linux stamps files from a clock that ticks every few milliseconds), so a
// stamp that recent is never trusted: the file is read again. This is git's
// "racily clean" rule; without it a token rotated by `signpost user rotate`
// within a tick of the previous change kept working on the running node.
const racyWindow = 2 * time.Second

// OpenStore opens the store at path (typically <data dir>/users.json). The
// file need not exist yet; it is created by the first change. params is the
// cost of new password hashes; now may be nil for time.Now.
func OpenStore(path string, params Argon2Params, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if params.Time == 0 || params.Memory == 0 || params.Threads == 0 || params.SaltLen < 8 || params.KeyLen < 16 {
		return nil, fmt.Errorf("auth: open store %s: invalid argon2 parameters", path)
	}
	s := &Store{path: path, params: params, now: now}
	s.dummy = hashPassword([]byte("signpost-dummy-password"), params)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// reloadLocked re-reads the file if it changed. REQUIRES: s.mu.
func (s *Store) reloadLocked() error {
	st, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.data, s.loaded = file{Version: 1}, fileStamp{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	stamp := fileStamp{mod: st.ModTime(), size: st.Size(), ok: true}
	if stamp == s.loaded && s.loadedAt.Sub(stamp.mod) > racyWindow {
		return nil // read well after its last change: any later one shows
	}
	readAt := time.Now()
	b, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.Version != 1 {
		return fmt.Errorf("auth: store %s: not a version-1 users file", s.path)
	}
	s.data, s.loaded, s.loadedAt = f, stamp, readAt
	return nil
}

// saveLocked writes the store atomically. REQUIRES: s.mu.
func (s *Store) saveLocked() error {
	b, err := json.MarshalIndent(s.data, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".users-*.tmp")
	if err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: store: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	s.loaded = fileStamp{} // force a re-read to pick up the new stamp
	return s.reloadLocked()
}

// validName accepts 1–64 characters of letters, digits, '.', '_', '-' and
// '@', starting with a letter (so a name can never be an NHS number).
func validName(n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("%w: must be 1 to 64 characters", ErrBadName)
	}
	if c := n[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return fmt.Errorf("%w: must start with a letter", ErrBadName)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-@", c) >= 0) {
			return fmt.Errorf("%w: letters, digits, '.', '_', '-' and '@' only", ErrBadName)
		}
	}
	return nil
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddUser adds a user with a fresh argon2id hash of password.
func (s *Store) AddUser(name string, role Role, password []byte) (User, error) {
	if err := validName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	if len(password) < MinPasswordLen {
		return User{}, fmt.Errorf("%w: at least %d characters", ErrWeakPassword, MinPasswordLen)
	}
	h := hashPassword(password, s.params) // outside the lock: it is slow
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return User{}, err
	}
	if s.userLocked(name) >= 0 {
		return User{}, fmt.Errorf("%w: user %q", ErrExists, name)
	}
	u := User{ID: randomID(), Name: name, Role: role, Created: s.now().UTC(), Hash: h}
	s.data.Users = append(s.data.Users, u)
	if err := s.saveLocked(); err != nil {
		return User{}, err
	}
	u.Hash = ""
	return u, nil
}

// RemoveUser removes a user; their sessions end at their next request.
func (s *Store) RemoveUser(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return err
	}
	i := s.userLocked(name)
	if i < 0 {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	s.data.Users = slices.Delete(s.data.Users, i, i+1)
	return s.saveLocked()
}

// Users lists the users, without their hashes.
func (s *Store) Users() ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return nil, err
	}
	out := slices.Clone(s.data.Users)
	for i := range out {
		out[i].Hash = ""
	}
	return out, nil
}

// userByID returns the current user with the given id, if it still exists.
func (s *Store) userByID(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return User{}, false
	}
	for _, u := range s.data.Users {
		if u.ID == id {
			u.Hash = ""
			return u, true
		}
	}
	return User{}, false
}

// userLocked returns the index of the named user, or -1. REQUIRES: s.mu.
func (s *Store) userLocked(name string) int {
	return slices.IndexFunc(s.data.Users, func(u User) bool { return u.Name == name })
}

// CheckPassword returns the user if name and password match. An unknown
// name costs the same argon2id work as a known one and gives the same
// [ErrBadCredentials], so neither timing nor message tells which was wrong.
func (s *Store) CheckPassword(name string, password []byte) (User, error) {
	s.mu.Lock()
	if err := s.reloadLocked(); err != nil {
		s.mu.Unlock()
		return User{}, err
	}
	u, hash := User{}, s.dummy
	if i := s.userLocked(name); i >= 0 {
		u = s.data.Users[i]
		hash = u.Hash
	}
	s.mu.Unlock()
	ok, err := checkPassword(password, hash)
	if err != nil {
		return User{}, fmt.Errorf("auth: user %q: %w", name, err)
	}
	if !ok || u.ID == "" {
		return User{}, ErrBadCredentials
	}
	u.Hash = ""
	return u, nil
}

// AddToken creates an API token for a system, valid for DefaultTokenTTL,
// and returns it. The token is shown only here: the store keeps its
// SHA-256 (a 256-bit random secret needs no slow hash).
func (s *Store) AddToken(name string, role Role) (string, APIToken, error) {
	return s.AddTokenFor(name, role, DefaultTokenTTL)
}

// AddTokenFor is AddToken with the token valid for ttl (at most
// MaxTokenTTL).
func (s *Store) AddTokenFor(name string, role Role, ttl time.Duration) (string, APIToken, error) {
	if err := validName(name); err != nil {
		return "", APIToken{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", APIToken{}, err
	}
	if err := validTTL(ttl); err != nil {
		return "", APIToken{}, err
	}
	secret, hash := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return "", APIToken{}, err
	}
	if s.tokenLocked(name) >= 0 {
		return "", APIToken{}, fmt.Errorf("%w: token %q", ErrExists, name)
	}
	now := s.now().UTC()
	t := APIToken{ID: randomID(), Name: name, Role: role, Created: now, Expires: now.Add(ttl), Hash: hash}
	s.data.Tokens = append(s.data.Tokens, t)
	if err := s.saveLocked(); err != nil {
		return "", APIToken{}, err
	}
	t.Hash = ""
	return secret, t, nil
}

// RotateToken replaces the named API token with a new one of the same name
// and role, valid for ttl, in one write: the old token stops working at
// once and the new one is returned (shown only here).
func (s *Store) RotateToken(name string, ttl time.Duration) (string, APIToken, error) {
	if err := validTTL(ttl); err != nil {
		return "", APIToken{}, err
	}
	secret, hash := newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return "", APIToken{}, err
	}
	i := s.tokenLocked(name)
	if i < 0 {
		return "", APIToken{}, fmt.Errorf("%w: token %q", ErrNotFound, name)
	}
	now := s.now().UTC()
	t := APIToken{ID: randomID(), Name: name, Role: s.data.Tokens[i].Role, Created: now, Expires: now.Add(ttl),
		DailyLookups: s.data.Tokens[i].DailyLookups, Hash: hash}
	s.data.Tokens[i] = t
	if err := s.saveLocked(); err != nil {
		return "", APIToken{}, err
	}
	t.Hash = ""
	return secret, t, nil
}

func validTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxTokenTTL {
		return fmt.Errorf("auth: a token's validity must be positive and at most %d days", MaxTokenTTL/(24*time.Hour))
	}
	return nil
}

// newToken returns a fresh API token and the hex SHA-256 the store keeps.
func newToken() (secret, hash string) {
	raw := make([]byte, 32)
	rand.Read(raw)
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	return secret, hex.EncodeToString(sum[:])
}

// SetTokenQuota sets the named API token's daily lookup quota (0: the
// node's default for tokens). A rotation keeps it.
func (s *Store) SetTokenQuota(name string, daily int) error {
	if daily < 0 {
		return errors.New("auth: a daily lookup quota cannot be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return err
	}
	i := s.tokenLocked(name)
	if i < 0 {
		return fmt.Errorf("%w: token %q", ErrNotFound, name)
	}
	s.data.Tokens[i].DailyLookups = daily
	return s.saveLocked()
}

// RemoveToken revokes the named API token at once.
func (s *Store) RemoveToken(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return err
	}
	i := s.tokenLocked(name)
	if i < 0 {
		return fmt.Errorf("%w: token %q", ErrNotFound, name)
	}
	s.data.Tokens = slices.Delete(s.data.Tokens, i, i+1)
	return s.saveLocked()
}

// Tokens lists the API tokens, without their hashes.
func (s *Store) Tokens() ([]APIToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return nil, err
	}
	out := slices.Clone(s.data.Tokens)
	for i := range out {
		out[i].Hash = ""
	}
	return out, nil
}

func (s *Store) tokenLocked(name string) int {
	return slices.IndexFunc(s.data.Tokens, func(t APIToken) bool { return t.Name == name })
}

// CheckToken returns the API token record for a presented token. It compares
// the token's hash with every stored hash in constant time. A token past its
// expiry gives a *TokenExpiredError (errors.Is ErrTokenExpired).
func (s *Store) CheckToken(secret string) (APIToken, error) {
	sum := sha256.Sum256([]byte(secret))
	got := []byte(hex.EncodeToString(sum[:]))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(); err != nil {
		return APIToken{}, err
	}
	found := -1
	for i, t := range s.data.Tokens {
		if subtle.ConstantTimeCompare(got, []byte(t.Hash)) == 1 {
			found = i
		}
	}
	if found < 0 || !strings.HasPrefix(secret, TokenPrefix) {
		return APIToken{}, ErrBadToken
	}
	t := s.data.Tokens[found]
	t.Hash = ""
	if !s.now().Before(t.ExpiresAt()) {
		return APIToken{}, &TokenExpiredError{Name: t.Name, Expired: t.ExpiresAt()}
	}
	return t, nil
}

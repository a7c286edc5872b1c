package auth

import "testing"

// BenchmarkArgon2idDefault is the cost of one sign-in (or one user add) at
// DefaultArgon2Params.
func BenchmarkArgon2idDefault(b *testing.B) {
	h := hashPassword([]byte("correct horse battery"), DefaultArgon2Params)
	b.ResetTimer()
	for b.Loop() {
		if ok, err := checkPassword([]byte("correct horse battery"), h); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkCheckToken is the cost of authenticating an API token request
// against a store of 20 tokens.
func BenchmarkCheckToken(b *testing.B) {
	s, err := OpenStore(b.TempDir()+"/"+UsersFileName, TestArgon2Params, nil)
	if err != nil {
		b.Fatal(err)
	}
	var secret string
	for i := 0; i < 20; i++ {
		secret, _, _ = s.AddToken("system"+string(rune('a'+i)), RolePractitioner)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.CheckToken(secret); err != nil {
			b.Fatal(err)
		}
	}
}

package sim

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseScenario: any input is either a valid scenario or an error that
// wraps ErrBadScenario; never a panic, never a scenario that fails Validate.
func FuzzParseScenario(f *testing.F) {
	for _, n := range BuiltinNames() {
		b, err := builtinFS.ReadFile("scenarios/" + n + ".json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","nodes":3,"partitions":[{"fraction":0.5,"from":"1s","until":"2s"}]}`))
	f.Add([]byte(`{"name":"x","duration":"1h","churn":[{"action":"crash","fraction":0.5,"at":"1s","rejoin_after":"1s","keep_disk":true}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScenario(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadScenario) {
				t.Fatalf("error does not wrap ErrBadScenario: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("parsed scenario fails Validate: %v", err)
		}
	})
}

// FuzzParseProcStat: any input is either unknown or a non-negative busy
// time; never a panic.
func FuzzParseProcStat(f *testing.F) {
	f.Add("cpu  100 5 50 9000 20 3 2 7 0 0\ncpu0 50 2 25 4500 10 1 1 3 0 0\n")
	f.Add("cpu 18446744073709551615 1 0 0 0 0 0 0\n")
	f.Add("cpu -1 0 0 0 0 0 0 0")
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseProcStat(s)
		if ok && d < 0 || !ok && d != 0 {
			t.Fatalf("parseProcStat(%q) = %v, %v", s, d, ok)
		}
	})
}

package watches

import (
	"encoding/json"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the store's decoders: nothing
// panics, and whatever decodes validates and encodes back to a record that
// decodes to the same value.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"AAAAAAAAAAAAAAAAAAAAAA","user":"sam","purpose":"safeguarding","keys":["AQIDAAAAAAAAAAAAAAAAAA"],"started":"2026-03-01T09:00:00Z","expires":"2026-05-30T09:00:00Z","nextSeq":1}`))
	f.Add([]byte(`{"watchId":"AAAAAAAAAAAAAAAAAAAAAA","seq":1,"type":"involved","lookupKey":"AQIDAAAAAAAAAAAAAAAAAA","entry":"c2VhbGVk","at":"2026-03-01T09:00:00Z"}`))
	f.Add([]byte(`{"id":"x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if w, next, err := DecodeWatch(data); err == nil {
			if Validate(w) != nil || next == 0 {
				t.Fatalf("decoded an invalid watch %+v", w)
			}
			b, err := json.Marshal(toRecord(w, next))
			if err != nil {
				t.Fatal(err)
			}
			w2, next2, err := DecodeWatch(b)
			if err != nil || w2.ID != w.ID || len(w2.Keys) != len(w.Keys) || next2 != next || !w2.Expires.Equal(w.Expires) {
				t.Fatalf("round trip: %+v %v", w2, err)
			}
		}
		if n, err := DecodeNotice(data); err == nil {
			if ValidateNotice(n) != nil || n.Seq == 0 {
				t.Fatalf("decoded an invalid notice %+v", n)
			}
		}
	})
}

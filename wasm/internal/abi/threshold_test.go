package abi

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/signpost-federation/signpost/wasm/internal/token"
	"github.com/signpost-federation/signpost/wasm/internal/token/tokentest"
)

// combineFixture is a genuine OpCombine request for two NHS numbers under a
// dealt 2-of-3 key, and the tokens it must give.
type combineFixture struct {
	keySet, partials []byte
	numbers, blinds  [][]byte
	want             [][]byte
}

func newCombineFixture(t testing.TB) combineFixture {
	t.Helper()
	d, err := tokentest.Deal(bytes.NewReader(bytes.Repeat([]byte{3}, 256)), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	h := Handler{Rand: zeroFreeReader{}}
	numbers := [][]byte{[]byte("999 000 0018"), []byte("9990000026")}
	resp := h.Handle(OpBlindVerifiable, AppendList(nil, append([][]byte{[]byte("nhs")}, numbers...)...))
	if resp[0] != StatusOK {
		t.Fatalf("blind: %s", resp[1:])
	}
	items, err := DecodeList(resp[1:])
	if err != nil || len(items) != 4 {
		t.Fatalf("blind response: %v", err)
	}
	f := combineFixture{numbers: numbers, blinds: [][]byte{bytes.Clone(items[0]), bytes.Clone(items[2])}}
	blinded := [][]byte{bytes.Clone(items[1]), bytes.Clone(items[3])}
	var ps []token.Partial
	for _, x := range []uint16{3, 1} {
		p, err := d.Partial(x, blinded)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	f.keySet = AppendKeySet(nil, KeySet{Purpose: "safeguarding", Epoch: 202611, KeySet: d.KeySet})
	f.partials = AppendPartials(nil, ps)
	inputs := [][]byte{[]byte("https://fhir.nhs.uk/Id/nhs-number|9990000018"), []byte("https://fhir.nhs.uk/Id/nhs-number|9990000026")}
	if f.want, err = token.Combine(d.KeySet, inputs, f.blinds, ps); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f combineFixture) request(keySet, partials []byte) []byte {
	items := [][]byte{[]byte("nhs"), keySet, partials}
	for i := range f.numbers {
		items = append(items, f.numbers[i], f.blinds[i])
	}
	return AppendList(nil, items...)
}

func TestCombineOp(t *testing.T) {
	f := newCombineFixture(t)
	h := Handler{Rand: zeroFreeReader{}}
	resp := h.Handle(OpCombine, f.request(f.keySet, f.partials))
	if resp[0] != StatusOK {
		t.Fatalf("combine: status %d: %s", resp[0], resp[1:])
	}
	items, err := DecodeList(resp[1:])
	if err != nil || len(items) != 6 {
		t.Fatalf("combine response: %v, %d items", err, len(items))
	}
	for i, w := range f.want {
		l, s := token.DeriveKeys(w)
		if !bytes.Equal(items[3*i], w) || !bytes.Equal(items[3*i+1], l[:]) || !bytes.Equal(items[3*i+2], s[:]) {
			t.Errorf("number %d: module combine differs from token.Combine", i)
		}
	}
	ks, err := DecodeKeySet(f.keySet)
	if err != nil {
		t.Fatal(err)
	}
	badPurpose := AppendKeySet(nil, KeySet{Purpose: "Safe", Epoch: 1, KeySet: ks.KeySet})
	badT := AppendKeySet(nil, KeySet{Purpose: "safe", Epoch: 1, KeySet: token.KeySet{T: 3, GroupKey: ks.GroupKey, Shares: ks.Shares[:2]}})
	ps, _ := DecodePartials(f.partials)
	tests := []struct {
		name string
		req  []byte
		want byte
	}{
		{"too few items", AppendList(nil, []byte("nhs"), f.keySet), StatusMalformed},
		{"odd pairs", AppendList(nil, []byte("nhs"), f.keySet, f.partials, f.numbers[0]), StatusMalformed},
		{"unknown scheme", AppendList(nil, []byte("chi-x"), f.keySet, f.partials, f.numbers[0], f.blinds[0]), StatusUnknownScheme},
		{"key set not a list", f.request([]byte{9}, f.partials), StatusMalformed},
		{"epoch with leading zero", f.request(AppendList(nil, []byte("safe"), []byte("01"), []byte("1"), ks.GroupKey), f.partials), StatusInvalidEpoch},
		{"bad purpose", f.request(badPurpose, f.partials), StatusInvalidPurpose},
		{"threshold above n", f.request(badT, f.partials), StatusKeySet},
		{"partials not a list", f.request(f.keySet, []byte{7}), StatusMalformed},
		{"one partial", f.request(f.keySet, AppendPartials(nil, ps[:1])), StatusTooFewPartials},
		{"no numbers", AppendList(nil, []byte("nhs"), f.keySet, f.partials), StatusBatchSize},
		{"invalid number", AppendList(nil, []byte("nhs"), f.keySet, f.partials, []byte("9990000019"), f.blinds[0]), StatusInvalidNumber},
		{"zero blind", AppendList(nil, []byte("nhs"), f.keySet, f.partials, f.numbers[0], make([]byte, 32)), StatusEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.Handle(OpCombine, tt.req)
			if resp[0] != tt.want {
				t.Fatalf("status %d (%s), want %d", resp[0], resp[1:], tt.want)
			}
		})
	}
}

func TestThresholdCodecRoundTrip(t *testing.T) {
	ks := KeySet{Purpose: "direct-care", Epoch: 4294967295, KeySet: token.KeySet{T: 2, GroupKey: []byte("K"), Shares: []token.PublicShare{{Index: 65535, Key: []byte("a")}, {Index: 1, Key: nil}}}}
	got, err := DecodeKeySet(AppendKeySet(nil, ks))
	if err != nil {
		t.Fatal(err)
	}
	if got.Purpose != ks.Purpose || got.Epoch != ks.Epoch || got.T != ks.T || !bytes.Equal(got.GroupKey, ks.GroupKey) ||
		!slices.EqualFunc(got.Shares, ks.Shares, func(a, b token.PublicShare) bool { return a.Index == b.Index && bytes.Equal(a.Key, b.Key) }) {
		t.Fatalf("key set round trip: %+v", got)
	}
	ps := []token.Partial{{Index: 7, Proof: []byte("p"), Evaluated: [][]byte{[]byte("z1"), nil}}, {Index: 1}}
	gotP, err := DecodePartials(AppendPartials(nil, ps))
	if err != nil || len(gotP) != 2 || gotP[0].Index != 7 || !bytes.Equal(gotP[0].Proof, []byte("p")) || len(gotP[0].Evaluated) != 2 || len(gotP[1].Evaluated) != 0 {
		t.Fatalf("partials round trip: %+v %v", gotP, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"index with sign", AppendList(nil, []byte("safe"), []byte("1"), []byte("1"), nil, []byte("+1"), nil)},
		{"index above 65535", AppendList(nil, []byte("safe"), []byte("1"), []byte("1"), nil, []byte("65536"), nil)},
		{"threshold above max", AppendList(nil, []byte("safe"), []byte("1"), []byte("65"), nil)},
		{"threshold empty", AppendList(nil, []byte("safe"), []byte("1"), nil, nil)},
		{"odd items", AppendList(nil, []byte("safe"), []byte("1"), []byte("1"), nil, []byte("1"))},
		{"too many issuers", AppendList(nil, append([][]byte{[]byte("safe"), []byte("1"), []byte("1"), nil}, slices.Repeat([][]byte{[]byte("1"), nil}, token.MaxIssuers+1)...)...)},
	} {
		if _, err := DecodeKeySet(tc.b); err == nil {
			t.Errorf("key set %s: accepted", tc.name)
		}
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"not a list", []byte{1}},
		{"partial not a list", AppendList(nil, []byte{3})},
		{"partial without proof", AppendList(nil, AppendList(nil, []byte("1")))},
		{"index leading zero", AppendList(nil, AppendList(nil, []byte("01"), nil))},
		{"too many partials", AppendList(nil, slices.Repeat([][]byte{AppendList(nil, []byte("1"), nil)}, token.MaxIssuers+1)...)},
	} {
		if _, err := DecodePartials(tc.b); !errors.Is(err, ErrThresholdEncoding) {
			t.Errorf("partials %s: %v", tc.name, err)
		}
	}
}

// FuzzThresholdDecoders: the key set and partials decoders refuse or decode
// any bytes without panicking, and what they decode re-encodes to an
// encoding that decodes to the same values.
func FuzzThresholdDecoders(f *testing.F) {
	fx := newCombineFixture(f)
	f.Add(fx.keySet)
	f.Add(fx.partials)
	f.Add(AppendList(nil, []byte("safe"), []byte("1"), []byte("1"), nil, []byte("65535"), nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ks, err := DecodeKeySet(b); err == nil {
			again, err := DecodeKeySet(AppendKeySet(nil, ks))
			if err != nil || again.Purpose != ks.Purpose || again.Epoch != ks.Epoch || again.T != ks.T || len(again.Shares) != len(ks.Shares) {
				t.Fatalf("key set does not round-trip: %v", err)
			}
			_ = token.CheckKeySet(ks.KeySet)
		}
		if ps, err := DecodePartials(b); err == nil {
			again, err := DecodePartials(AppendPartials(nil, ps))
			if err != nil || len(again) != len(ps) {
				t.Fatalf("partials do not round-trip: %v", err)
			}
			for i := range ps {
				if again[i].Index != ps[i].Index || len(again[i].Evaluated) != len(ps[i].Evaluated) || !bytes.Equal(again[i].Proof, ps[i].Proof) {
					t.Fatalf("partial %d does not round-trip", i)
				}
			}
		}
	})
}

// FuzzCombineRequest mutates the key set and partials of a genuine combine
// request: the handler answers with a status, never panics or fails
// internally, and never returns other tokens for the genuine group key.
func FuzzCombineRequest(f *testing.F) {
	fx := newCombineFixture(f)
	f.Add(fx.keySet, fx.partials)
	f.Add([]byte{}, []byte{})
	h := Handler{Rand: zeroFreeReader{}}
	f.Fuzz(func(t *testing.T, keySet, partials []byte) {
		resp := h.Handle(OpCombine, fx.request(keySet, partials))
		switch resp[0] {
		case StatusInternal:
			t.Fatalf("internal failure: %s", resp[1:])
		case StatusOK:
			items, err := DecodeList(resp[1:])
			if err != nil || len(items) != 6 {
				t.Fatalf("OK response malformed: %v", err)
			}
			// A key set for the same group key K can only give K's
			// tokens (another key set, e.g. t=1 with some K_i as its
			// group key, is another key, and its tokens are its own).
			ks, _ := DecodeKeySet(keySet)
			genuine, _ := DecodeKeySet(fx.keySet)
			if bytes.Equal(ks.GroupKey, genuine.GroupKey) && (!bytes.Equal(items[0], fx.want[0]) || !bytes.Equal(items[3], fx.want[1])) {
				t.Fatalf("combine for the genuine group key gave other tokens (t=%d, %d shares)", ks.T, len(ks.Shares))
			}
		}
	})
}

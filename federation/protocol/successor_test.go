package protocol

import "testing"

func TestSuccessor(t *testing.T) {
	for _, tc := range []struct {
		peers []PeerID
		self  PeerID
		want  PeerID
	}{
		{[]PeerID{"b", "d", "f"}, "c", "d"}, // sorted
		{[]PeerID{"b", "d", "f"}, "g", "b"}, // sorted, wraps
		{[]PeerID{"b", "d", "f"}, "a", "b"}, // sorted, before all
		{[]PeerID{"d", "f", "b"}, "c", "d"}, // rotated after self (the sim's view)
		{[]PeerID{"f", "b", "d"}, "e", "f"}, // rotated
		{[]PeerID{"f", "b", "d"}, "g", "b"}, // rotated, wraps to the smallest
		{[]PeerID{"d", "f", "b", "c"}, "e", "f"},
		{[]PeerID{"x"}, "a", "x"},
	} {
		got, ok := successor(tc.peers, tc.self)
		if !ok || got != tc.want {
			t.Errorf("successor(%v, %q) = %q, want %q", tc.peers, tc.self, got, tc.want)
		}
	}
	if _, ok := successor(nil, "a"); ok {
		t.Error("successor of an empty view")
	}
}

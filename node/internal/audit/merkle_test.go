package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// ctLeaves are the leaf inputs of the Certificate Transparency reference
// test vectors (RFC 6962 / RFC 9162 share the hashing).
var ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

// ctRoots[i] is the root of the tree of the first i+1 ctLeaves.
var ctRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func ctLeafHashes(t *testing.T) []Hash {
	t.Helper()
	var out []Hash
	for _, s := range ctLeaves {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, LeafHash(b))
	}
	return out
}

func TestRootHashKnownVectors(t *testing.T) {
	leaves := ctLeafHashes(t)
	if got := RootHash(nil).String(); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root = %s", got)
	}
	var cr compactRange
	for i, want := range ctRoots {
		if got := RootHash(leaves[:i+1]).String(); got != want {
			t.Errorf("RootHash(size %d) = %s, want %s", i+1, got, want)
		}
		cr.append(leaves[i])
		if got := cr.root().String(); got != want {
			t.Errorf("compact range root(size %d) = %s, want %s", i+1, got, want)
		}
	}
}

// naiveRoot is MTH written straight from RFC 9162 section 2.1.1, with the
// split found by a loop rather than bit tricks: the reference the fast code
// is checked against.
func naiveRoot(d []Hash) Hash {
	n := len(d)
	if n == 0 {
		return emptyRoot
	}
	if n == 1 {
		return d[0]
	}
	k := 1
	for k*2 < n {
		k *= 2
	}
	return nodeHash(naiveRoot(d[:k]), naiveRoot(d[k:]))
}

func syntheticLeaves(n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		out[i] = LeafHash([]byte(fmt.Sprintf("leaf %d", i)))
	}
	return out
}

func TestCompactRangeMatchesNaive(t *testing.T) {
	leaves := syntheticLeaves(300)
	var cr compactRange
	if cr.root() != naiveRoot(nil) {
		t.Fatal("empty compact range root differs")
	}
	for n := 1; n <= len(leaves); n++ {
		cr.append(leaves[n-1])
		want := naiveRoot(leaves[:n])
		if cr.root() != want {
			t.Fatalf("size %d: compact range root differs from naive MTH", n)
		}
		if RootHash(leaves[:n]) != want {
			t.Fatalf("size %d: RootHash differs from naive MTH", n)
		}
	}
}

func TestInclusionProofsAllPositions(t *testing.T) {
	leaves := syntheticLeaves(40)
	for n := 1; n <= len(leaves); n++ {
		root := naiveRoot(leaves[:n])
		for i := 0; i < n; i++ {
			proof, err := InclusionProof(leaves[:n], uint64(i))
			if err != nil {
				t.Fatalf("proof(%d, %d): %v", i, n, err)
			}
			if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), proof, root); err != nil {
				t.Fatalf("verify(%d, %d): %v", i, n, err)
			}
			// The same proof must not verify another leaf, index or size.
			if VerifyInclusion(leaves[(i+1)%n], uint64(i), uint64(n), proof, root) == nil && n > 1 {
				t.Fatalf("(%d, %d): proof verified the wrong leaf", i, n)
			}
			if n > 1 && VerifyInclusion(leaves[i], uint64((i+1)%n), uint64(n), proof, root) == nil && leaves[i] != leaves[(i+1)%n] {
				t.Fatalf("(%d, %d): proof verified at the wrong index", i, n)
			}
			if len(proof) > 0 {
				bad := append([]Hash(nil), proof...)
				bad[len(bad)-1][0] ^= 1
				if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), bad, root); !errors.Is(err, ErrProofInvalid) {
					t.Fatalf("(%d, %d): flipped proof: err %v", i, n, err)
				}
				if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), proof[:len(proof)-1], root); err == nil {
					t.Fatalf("(%d, %d): short proof verified", i, n)
				}
			}
			if err := VerifyInclusion(leaves[i], uint64(i), uint64(n), append(proof, root), root); err == nil {
				t.Fatalf("(%d, %d): long proof verified", i, n)
			}
		}
	}
	if _, err := InclusionProof(leaves[:3], 3); !errors.Is(err, ErrRange) {
		t.Errorf("out-of-range proof: err %v", err)
	}
}

func TestConsistencyProofsAllSizes(t *testing.T) {
	leaves := syntheticLeaves(40)
	for n := 1; n <= len(leaves); n++ {
		rootN := naiveRoot(leaves[:n])
		for m := 1; m <= n; m++ {
			rootM := naiveRoot(leaves[:m])
			proof, err := ConsistencyProof(leaves[:n], uint64(m))
			if err != nil {
				t.Fatalf("proof(%d, %d): %v", m, n, err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), proof, rootM, rootN); err != nil {
				t.Fatalf("verify(%d, %d): %v", m, n, err)
			}
			if m == n {
				continue
			}
			// A different old tree (one leaf edited) must not verify.
			edited := append([]Hash(nil), leaves[:m]...)
			edited[m/2][0] ^= 1
			if err := VerifyConsistency(uint64(m), uint64(n), proof, naiveRoot(edited), rootN); !errors.Is(err, ErrProofInvalid) {
				t.Fatalf("(%d, %d): edited old tree: err %v", m, n, err)
			}
			for j := range proof {
				bad := append([]Hash(nil), proof...)
				bad[j][31] ^= 0x80
				if VerifyConsistency(uint64(m), uint64(n), bad, rootM, rootN) == nil {
					t.Fatalf("(%d, %d): proof with element %d flipped verified", m, n, j)
				}
			}
		}
	}
	if _, err := ConsistencyProof(leaves[:3], 4); !errors.Is(err, ErrRange) {
		t.Errorf("m > n: err %v", err)
	}
	if _, err := ConsistencyProof(leaves[:3], 0); !errors.Is(err, ErrRange) {
		t.Errorf("m = 0: err %v", err)
	}
}

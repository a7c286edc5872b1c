package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest: a leaf hash, an interior node or a tree root.
type Hash [sha256.Size]byte

// Errors from the proof functions.
var (
	// ErrProofInvalid means a proof does not connect the claimed leaf or
	// smaller tree to the claimed root.
	ErrProofInvalid = errors.New("audit: proof does not verify")
	// ErrRange means an index or tree size outside the tree.
	ErrRange = errors.New("audit: index or size out of range")
)

// LeafHash is RFC 9162's leaf hash: SHA-256(0x00 ‖ data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// nodeHash is RFC 9162's interior hash: SHA-256(0x01 ‖ left ‖ right).
func nodeHash(left, right Hash) Hash {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[1+sha256.Size:], right[:])
	return sha256.Sum256(buf[:])
}

// emptyRoot is the root of the empty tree, SHA-256 of the empty string.
var emptyRoot = Hash(sha256.Sum256(nil))

// RootHash is RFC 9162's Merkle Tree Hash MTH(D[0:n]) of the given leaf
// hashes, computed recursively from the definition.
func RootHash(leaves []Hash) Hash {
	switch n := len(leaves); n {
	case 0:
		return emptyRoot
	case 1:
		return leaves[0]
	default:
		k := splitPoint(uint64(n))
		return nodeHash(RootHash(leaves[:k]), RootHash(leaves[k:]))
	}
}

// splitPoint is the largest power of two strictly less than n (n ≥ 2).
func splitPoint(n uint64) uint64 {
	return 1 << (bits.Len64(n-1) - 1)
}

// compactRange accumulates leaves and yields the root of the tree so far in
// O(log n) memory: it keeps the roots of the perfect subtrees that the binary
// decomposition of the size describes, largest first. It is how [Verify]
// recomputes the running tree head of a log of any length.
type compactRange struct {
	size  uint64
	peaks []Hash // peaks[i] is the root of a perfect subtree; sizes decrease
}

// append adds one leaf hash.
func (c *compactRange) append(leaf Hash) {
	h := leaf
	// Merge equal-size perfect subtrees: one per trailing 1 bit of size.
	for s := c.size; s&1 == 1; s >>= 1 {
		h = nodeHash(c.peaks[len(c.peaks)-1], h)
		c.peaks = c.peaks[:len(c.peaks)-1]
	}
	c.peaks = append(c.peaks, h)
	c.size++
}

// root folds the peaks from the smallest up, which is exactly MTH: the left
// child of every unbalanced node is the largest power-of-two prefix.
func (c *compactRange) root() Hash {
	if len(c.peaks) == 0 {
		return emptyRoot
	}
	h := c.peaks[len(c.peaks)-1]
	for i := len(c.peaks) - 2; i >= 0; i-- {
		h = nodeHash(c.peaks[i], h)
	}
	return h
}

// InclusionProof is RFC 9162's PATH(m, D[0:n]) (section 2.1.3.1): the audit
// path proving that leaf index is in the tree of the given leaves.
func InclusionProof(leaves []Hash, index uint64) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("%w: leaf %d of a tree of size %d", ErrRange, index, len(leaves))
	}
	return inclusionPath(leaves, index), nil
}

func inclusionPath(d []Hash, m uint64) []Hash {
	n := uint64(len(d))
	if n <= 1 {
		return nil
	}
	k := splitPoint(n)
	if m < k {
		return append(inclusionPath(d[:k], m), RootHash(d[k:]))
	}
	return append(inclusionPath(d[k:], m-k), RootHash(d[:k]))
}

// VerifyInclusion checks an inclusion proof (RFC 9162 section 2.1.3.2): that
// the leaf with hash leaf is at index in the tree of the given size and root.
func VerifyInclusion(leaf Hash, index, size uint64, proof []Hash, root Hash) error {
	if index >= size {
		return fmt.Errorf("%w: leaf %d of a tree of size %d", ErrRange, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return fmt.Errorf("%w: inclusion proof too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: inclusion proof too short", ErrProofInvalid)
	}
	if r != root {
		return fmt.Errorf("%w: inclusion proof gives another root", ErrProofInvalid)
	}
	return nil
}

// ConsistencyProof is RFC 9162's PROOF(m, D[0:n]) (section 2.1.4.1): it proves
// that the tree of the first m leaves is a prefix of the tree of all of them,
// so nothing in the first m was edited, removed or reordered.
func ConsistencyProof(leaves []Hash, m uint64) ([]Hash, error) {
	n := uint64(len(leaves))
	if m == 0 || m > n {
		return nil, fmt.Errorf("%w: consistency of size %d with size %d", ErrRange, m, n)
	}
	return subproof(m, leaves, true), nil
}

func subproof(m uint64, d []Hash, b bool) []Hash {
	n := uint64(len(d))
	if m == n {
		if b {
			return nil
		}
		return []Hash{RootHash(d)}
	}
	k := splitPoint(n)
	if m <= k {
		return append(subproof(m, d[:k], b), RootHash(d[k:]))
	}
	return append(subproof(m-k, d[k:], false), RootHash(d[:k]))
}

// VerifyConsistency checks a consistency proof (RFC 9162 section 2.1.4.2)
// between a tree of size1 with root1 and a tree of size2 with root2.
func VerifyConsistency(size1, size2 uint64, proof []Hash, root1, root2 Hash) error {
	switch {
	case size1 == 0 || size1 > size2:
		return fmt.Errorf("%w: consistency of size %d with size %d", ErrRange, size1, size2)
	case size1 == size2:
		if len(proof) != 0 {
			return fmt.Errorf("%w: proof for equal sizes must be empty", ErrProofInvalid)
		}
		if root1 != root2 {
			return fmt.Errorf("%w: equal sizes with different roots", ErrProofInvalid)
		}
		return nil
	}
	if len(proof) == 0 {
		return fmt.Errorf("%w: empty consistency proof", ErrProofInvalid)
	}
	// If size1 is a power of two the first tree is a whole subtree and its
	// root is the implicit first element of the proof.
	if size1&(size1-1) == 0 {
		proof = append([]Hash{root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for _, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: consistency proof too long", ErrProofInvalid)
		}
		if fn&1 == 1 || fn == sn {
			fr = nodeHash(c, fr)
			sr = nodeHash(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: consistency proof too short", ErrProofInvalid)
	}
	if fr != root1 || sr != root2 {
		return fmt.Errorf("%w: consistency proof gives other roots", ErrProofInvalid)
	}
	return nil
}

package locator

import "encoding/binary"

// MaxDigestDepth is the deepest digest tree a Policy may ask for.
const MaxDigestDepth = 6

// Hash is a 128-bit digest value. A bucket's hash is the XOR of its entries'
// hashes, so adding or removing one entry updates it in O(1).
type Hash [16]byte

func (h *Hash) xor(o Hash) {
	a := binary.LittleEndian.Uint64(h[:8]) ^ binary.LittleEndian.Uint64(o[:8])
	b := binary.LittleEndian.Uint64(h[8:]) ^ binary.LittleEndian.Uint64(o[8:])
	binary.LittleEndian.PutUint64(h[:8], a)
	binary.LittleEndian.PutUint64(h[8:], b)
}

// Bucket is one node of the digest tree.
type Bucket struct {
	Hash  Hash
	Count uint32
}

// BucketIndex returns the index of id's bucket at level: its first 4×level
// bits.
func BucketIndex(id ID, level int) uint32 {
	if level == 0 {
		return 0
	}
	return binary.BigEndian.Uint32(id[:4]) >> (32 - 4*uint(level))
}

// BucketBounds returns the smallest and largest ids in bucket (level, index).
func BucketBounds(level int, index uint32) (lo, hi ID) {
	for i := range hi {
		hi[i] = 0xff
	}
	if level == 0 {
		return lo, hi
	}
	shift := 32 - 4*uint(level)
	start := index << shift
	end := start | (1<<shift - 1)
	binary.BigEndian.PutUint32(lo[:4], start)
	binary.BigEndian.PutUint32(hi[:4], end)
	return lo, hi
}

// digest is the incrementally maintained hash tree: level l has 16^l
// buckets. Not safe for concurrent use; the owning store locks.
type digest struct {
	depth  int
	levels [][]Bucket
}

func newDigest(depth int) *digest {
	d := &digest{depth: depth, levels: make([][]Bucket, depth+1)}
	for l := 0; l <= depth; l++ {
		d.levels[l] = make([]Bucket, 1<<(4*l))
	}
	return d
}

// add folds an entry in (or out: XOR is its own inverse; delta is +1 or -1).
func (d *digest) add(id ID, h Hash, delta int) {
	top := binary.BigEndian.Uint32(id[:4])
	for l := 0; l <= d.depth; l++ {
		idx := uint32(0)
		if l > 0 {
			idx = top >> (32 - 4*uint(l))
		}
		b := &d.levels[l][idx]
		b.Hash.xor(h)
		b.Count = uint32(int(b.Count) + delta)
	}
}

func (d *digest) bucket(level int, index uint32) Bucket {
	if level < 0 || level > d.depth || int(index) >= len(d.levels[level]) {
		return Bucket{}
	}
	return d.levels[level][index]
}

package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/signpost-federation/signpost/locator"
)

// involvement is one (person, agency) pair: "node holds a record for
// person". The sim never needs NHS numbers: it works on lookup keys derived
// from the seed and the person's index.
type involvement struct {
	person int32
	node   int32
}

// population is the synthetic world of a run.
type population struct {
	seed  uint64
	kinds []string // agency kind of each node
	// steady is the shuffled stream of involvements published at the
	// steady rate; bulk[i] those of bulk import i.
	steady []involvement
	bulk   [][]involvement
	people int // people in total (steady and bulk)
}

// derive returns n bytes of SHA-256(label ‖ seed ‖ i ‖ counter…).
func derive(label string, seed uint64, i uint64, n int) []byte {
	var out []byte
	for c := uint32(0); len(out) < n; c++ {
		h := sha256.New()
		h.Write([]byte("signpost/sim/" + label + "\x00"))
		var b [20]byte
		binary.BigEndian.PutUint64(b[:8], seed)
		binary.BigEndian.PutUint64(b[8:16], i)
		binary.BigEndian.PutUint32(b[16:], c)
		h.Write(b[:])
		out = h.Sum(out)
	}
	return out[:n]
}

// lookupKey and sealKey stand in for the keys a token would give.
func lookupKey(seed uint64, person int32) locator.LookupKey {
	var k locator.LookupKey
	copy(k[:], derive("lookup", seed, uint64(person), len(k)))
	return k
}

func sealKey(seed uint64, person int32) locator.SealKey {
	var k locator.SealKey
	copy(k[:], derive("seal", seed, uint64(person), len(k)))
	return k
}

// holder returns node's Holder (node key and holder secret from the seed).
func holder(seed uint64, node int32, id string) (*locator.Holder, error) {
	nodeKey := ed25519.NewKeyFromSeed(derive("node-key", seed, uint64(node), ed25519.SeedSize))
	var secret [32]byte
	copy(secret[:], derive("holder-secret", seed, uint64(node), 32))
	return locator.NewHolder(id, nodeKey, secret)
}

// zipf draws k in 1..max with P(k) ∝ k^-s.
func zipfTable(s float64, max int) []float64 {
	cum := make([]float64, max)
	var t float64
	for k := 1; k <= max; k++ {
		t += 1 / math.Pow(float64(k), s)
		cum[k-1] = t
	}
	for i := range cum {
		cum[i] /= t
	}
	return cum
}

func drawZipf(r *rand.Rand, cum []float64) int {
	u := r.Float64()
	for i, c := range cum {
		if u < c {
			return i + 1
		}
	}
	return len(cum)
}

// newPopulation builds the world from the scenario.
func newPopulation(s *Scenario) *population {
	r := rand.New(rand.NewPCG(s.Seed, 0x504f50)) // "POP"
	p := &population{seed: s.Seed, kinds: make([]string, s.Nodes)}
	kinds := sortedKeys(s.Agencies)
	var total float64
	for _, k := range kinds {
		total += s.Agencies[k]
	}
	for i := range p.kinds {
		u := r.Float64() * total
		p.kinds[i] = kinds[len(kinds)-1]
		for _, k := range kinds {
			if u < s.Agencies[k] {
				p.kinds[i] = k
				break
			}
			u -= s.Agencies[k]
		}
	}
	cum := zipfTable(s.People.S, s.People.MaxAgencies)
	chosen := make(map[int32]bool)
	for person := range int32(s.People.Count) {
		k := drawZipf(r, cum)
		clear(chosen)
		for len(chosen) < k {
			n := int32(r.IntN(s.Nodes))
			if !chosen[n] {
				chosen[n] = true
				p.steady = append(p.steady, involvement{person, n})
			}
		}
	}
	r.Shuffle(len(p.steady), func(i, j int) { p.steady[i], p.steady[j] = p.steady[j], p.steady[i] })
	next := int32(s.People.Count)
	for _, b := range s.BulkImports {
		inv := make([]involvement, b.Entries)
		for i := range inv {
			inv[i] = involvement{next, int32(b.Node)}
			next++
		}
		p.bulk = append(p.bulk, inv)
	}
	p.people = int(next)
	return p
}

package sim

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/signpost-federation/signpost/sim/internal/simnet"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("250ms", "1m30s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"250ms\", got %s", describe(b))
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"250ms\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Scenario is everything a run depends on. Together with its Seed it
// determines the report exactly (apart from the "wall" fields). The JSON
// form is the scenario file format; see sim/scenarios/*.json and
// docs in sim/doc.go.
type Scenario struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Seed        uint64   `json:"seed"`
	Nodes       int      `json:"nodes"`
	Duration    Duration `json:"duration"`
	// Agencies gives the weight of each agency kind (e.g. "school": 5);
	// every node is one agency, its kind drawn by weight.
	Agencies map[string]float64 `json:"agencies"`
	People   People             `json:"people"`
	Publish  Publish            `json:"publish"`
	// BulkImports are one-node imports of many entries at once.
	BulkImports []BulkImport `json:"bulk_imports,omitempty"`
	Network     Network      `json:"network"`
	Partitions  []Partition  `json:"partitions,omitempty"`
	Churn       []Churn      `json:"churn,omitempty"`
	// Replication is "full" (the only mode the protocol core has yet).
	Replication string   `json:"replication"`
	Protocol    Protocol `json:"protocol"`
	// Lookups is the rate of recall probes: lookups at a random up node
	// for a random published person, per virtual second.
	Lookups float64 `json:"lookups_per_second"`
	// SampleInterval is the width of the report's time series buckets.
	SampleInterval Duration `json:"sample_interval"`
	// DigestDepth is the locator digest depth of every simulated store
	// (1..6; 2 keeps 10,000 stores small).
	DigestDepth int `json:"digest_depth"`
}

// People describes the synthetic population: Count people, each known to
// K agencies where K follows a Zipf law on 1..MaxAgencies with exponent S
// (most people known to one or two agencies, a few to many).
type People struct {
	Count       int     `json:"count"`
	MaxAgencies int     `json:"max_agencies"`
	S           float64 `json:"zipf_s"`
}

// Publish is the steady stream of new involvements: entries are published
// at Rate per virtual second between Start and Stop (Stop 0: the end of
// the run), taken in a seeded random order from the people's involvements.
type Publish struct {
	Rate  float64  `json:"rate_per_second"`
	Start Duration `json:"start"`
	Stop  Duration `json:"stop"`
}

// BulkImport publishes Entries new involvements at one node at one time
// (a case-management system's initial import).
type BulkImport struct {
	Node    int      `json:"node"`
	At      Duration `json:"at"`
	Entries int      `json:"entries"`
}

// Latency is a latency distribution (see simnet.Latency).
type Latency struct {
	Dist   string   `json:"distribution"`
	Median Duration `json:"median,omitempty"`
	Min    Duration `json:"min,omitempty"`
	Max    Duration `json:"max,omitempty"`
	Sigma  float64  `json:"sigma,omitempty"`
}

func (l Latency) simnet() simnet.Latency {
	return simnet.Latency{Dist: l.Dist, Median: l.Median.D(), Min: l.Min.D(), Max: l.Max.D(), Sigma: l.Sigma}
}

// Network describes the simulated network. Nodes are spread round-robin
// over Regions; Latency/Loss apply within a region, WideLatency/WideLoss
// between regions.
type Network struct {
	Latency     Latency  `json:"latency"`
	Loss        float64  `json:"loss"`
	Regions     int      `json:"regions,omitempty"`
	WideLatency *Latency `json:"wide_latency,omitempty"`
	WideLoss    float64  `json:"wide_loss,omitempty"`
	// Bandwidth is each node's uplink and downlink in bytes per second
	// (0: unlimited).
	Bandwidth int64 `json:"bandwidth_bytes_per_second,omitempty"`
	// MaxQueueDelay bounds uplink queueing before tail drop (default 2s).
	MaxQueueDelay Duration `json:"max_queue_delay,omitempty"`
	// SharedCPUs and ServiceTime model nodes sharing one machine's
	// processors (the real-node comparison): with SharedCPUs ≥ 1 every
	// received message queues, first come first served, for the first
	// free of SharedCPUs processors, takes it for ServiceTime, and is
	// delivered when done. 0 (the default): no pool, processing costs
	// nothing (nodes are separate machines). A pool with ServiceTime 0
	// behaves exactly as none.
	ServiceTime Duration `json:"service_time,omitempty"`
	SharedCPUs  int      `json:"shared_cpus,omitempty"`
}

// Partition cuts a group of nodes off from the rest between From and
// Until. The group is given by exactly one of: Fraction (the first
// Fraction of the nodes by index), Nodes (explicit indexes) or Region (one
// region of Network.Regions).
type Partition struct {
	Fraction float64  `json:"fraction,omitempty"`
	Nodes    []int    `json:"nodes,omitempty"`
	Region   *int     `json:"region,omitempty"`
	From     Duration `json:"from"`
	Until    Duration `json:"until"`
}

// side returns 1 for the nodes cut off, 0 for the rest.
func (p Partition) side(nodes, regions int) []uint8 {
	side := make([]uint8, nodes)
	switch {
	case p.Region != nil:
		for i := range side {
			if regions > 1 && i%regions == *p.Region {
				side[i] = 1
			}
		}
	case len(p.Nodes) > 0:
		for _, i := range p.Nodes {
			side[i] = 1
		}
	default:
		cut := int(math.Round(p.Fraction * float64(nodes)))
		for j := range cut {
			side[j] = 1
		}
	}
	return side
}

// Churn actions.
const (
	ChurnLeave = "leave" // graceful: leaves membership at once
	ChurnCrash = "crash" // membership notices after FailureDetection
)

// Churn takes Fraction of the nodes (a seeded random choice, never node 0
// so that bulk imports have a home) down at At; if RejoinAfter > 0 they
// come back that much later, with their store if KeepDisk, empty otherwise.
type Churn struct {
	Action      string   `json:"action"`
	Fraction    float64  `json:"fraction"`
	At          Duration `json:"at"`
	RejoinAfter Duration `json:"rejoin_after,omitempty"`
	KeepDisk    bool     `json:"keep_disk,omitempty"`
	// FailureDetection is how long membership takes to notice a crash
	// (default 5s, memberlist's LAN suspicion order of magnitude).
	FailureDetection Duration `json:"failure_detection,omitempty"`
}

// Protocol holds the protocol core's parameters (see protocol.Config).
type Protocol struct {
	Fanout              int      `json:"fanout"`
	PushInterval        Duration `json:"push_interval"`
	AntiEntropyInterval Duration `json:"anti_entropy_interval"`
	MaxMessageSize      int      `json:"max_message_size,omitempty"`
	MaxPushQueue        int      `json:"max_push_queue,omitempty"`
	// MaxHops bounds push relaying (protocol default 6); StampThreshold
	// is the bucket size below which anti-entropy lists stamps
	// (protocol default 32). 0 keeps the protocol's default.
	MaxHops        int `json:"max_hops,omitempty"`
	StampThreshold int `json:"stamp_threshold,omitempty"`
	// RelayFanout is how many peers a relay announces a fresh version to
	// (protocol default 0: ⌈ln N⌉+3, at least fanout).
	RelayFanout int `json:"relay_fanout,omitempty"`
	// MaxSendRate bounds each node's anti-entropy and want answers, in
	// bytes per second (protocol default 0: unbounded).
	MaxSendRate int `json:"max_send_rate,omitempty"`
}

// Limits of a scenario, so that a typo cannot ask for a petabyte.
const (
	MaxNodes    = 100_000
	MaxPeople   = 10_000_000
	MaxDuration = 24 * time.Hour
)

// ErrBadScenario is wrapped by every scenario validation error.
var ErrBadScenario = errors.New("sim: invalid scenario")

// ParseScenario reads a JSON scenario, rejecting unknown fields (names
// match exactly) and keys given twice, fills defaults for fields left out
// and validates everything, reporting every problem at once with its field
// path ("partitions[1].from: ..."); a syntax error names its line and
// column.
func ParseScenario(r io.Reader) (*Scenario, error) {
	b, err := readScenarioJSON(r)
	if err != nil {
		return nil, err
	}
	s := DefaultScenario()
	s.Agencies = nil
	if errs := decodeStrict(b, &s); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrBadScenario, errors.Join(errs...))
	}
	if s.Agencies == nil {
		s.Agencies = DefaultScenario().Agencies
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// LoadScenario returns the built-in scenario called name, or parses the
// file at name.
func LoadScenario(name string) (*Scenario, error) {
	if s, err := Builtin(name); err == nil {
		return s, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("sim: %q is neither a built-in scenario (%s) nor a readable file: %w",
			name, strings.Join(BuiltinNames(), ", "), err)
	}
	defer f.Close()
	s, err := ParseScenario(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

//go:embed scenarios/*.json
var builtinFS embed.FS

// BuiltinNames lists the built-in scenarios.
func BuiltinNames() []string {
	ents, _ := builtinFS.ReadDir("scenarios")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	slices.Sort(out)
	return out
}

// Builtin returns the built-in scenario called name.
func Builtin(name string) (*Scenario, error) {
	if strings.ContainsAny(name, "/\\.") {
		return nil, fmt.Errorf("sim: no built-in scenario %q", name)
	}
	f, err := builtinFS.Open("scenarios/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("sim: no built-in scenario %q (have %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	defer f.Close()
	return ParseScenario(f)
}

// DefaultScenario is the base every scenario file is read over.
func DefaultScenario() Scenario {
	return Scenario{
		Name:     "unnamed",
		Seed:     1,
		Nodes:    100,
		Duration: Duration(60 * time.Second),
		Agencies: map[string]float64{
			"childrens-social-care": 1, "school": 6, "gp-practice": 4,
			"hospital": 1, "youth-offending": 0.5, "police": 0.5,
		},
		People:  People{Count: 1000, MaxAgencies: 12, S: 1.6},
		Publish: Publish{Rate: 2, Start: Duration(time.Second)},
		Network: Network{
			Latency: Latency{Dist: simnet.DistLogNormal, Median: Duration(10 * time.Millisecond), Sigma: 0.4, Min: Duration(time.Millisecond), Max: Duration(200 * time.Millisecond)},
		},
		Replication: "full",
		Protocol: Protocol{
			Fanout:              3,
			PushInterval:        Duration(200 * time.Millisecond),
			AntiEntropyInterval: Duration(10 * time.Second),
		},
		Lookups:        50,
		SampleInterval: Duration(time.Second),
		DigestDepth:    2,
	}
}

// Shorten sets the run's duration to d and clips everything scheduled
// after it (publication window, partitions, churn, bulk imports), so that
// a built-in can be tried briefly: `signpost sim --duration 10s`.
func (s *Scenario) Shorten(d time.Duration) {
	s.Duration = Duration(d)
	if s.Publish.Stop.D() > d {
		s.Publish.Stop = Duration(d)
	}
	if s.Publish.Start.D() > d {
		s.Publish.Start = Duration(d)
	}
	var ps []Partition
	for _, p := range s.Partitions {
		if p.From.D() < d {
			p.Until = Duration(min(p.Until.D(), d))
			ps = append(ps, p)
		}
	}
	s.Partitions = ps
	var cs []Churn
	for _, c := range s.Churn {
		if c.At.D() < d {
			cs = append(cs, c)
		}
	}
	s.Churn = cs
	var bs []BulkImport
	for _, b := range s.BulkImports {
		if b.At.D() < d {
			bs = append(bs, b)
		}
	}
	s.BulkImports = bs
}

// Validate reports every problem with s, each with its JSON field path.
func (s *Scenario) Validate() error {
	v := &problems{dur: s.Duration.D()}
	v.size(s)
	v.workload(s)
	s.Network.validate(v.bad)
	v.partitions(s)
	v.churn(s)
	v.protocol(s)
	v.sampling(s)
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %q: %w", ErrBadScenario, s.Name, errors.Join(v.errs...))
}

// problems collects what Validate finds, each error prefixed with the
// field path, so that a scenario's problems are all reported at once.
type problems struct {
	errs []error
	dur  time.Duration // the run's duration, which bounds its times
}

func (v *problems) bad(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// within: d is a time of the run.
func (v *problems) within(path string, d Duration) {
	if d < 0 || d.D() > v.dur {
		v.bad(path, "%v outside the run (0..%v)", d.D(), v.dur)
	}
}

// frac: f is a fraction strictly between 0 and 1.
func (v *problems) frac(path string, f float64) {
	if !(f > 0 && f < 1) {
		v.bad(path, "%v must be strictly between 0 and 1", f)
	}
}

// size checks the name, nodes, duration, agencies and people.
func (v *problems) size(s *Scenario) {
	if s.Name == "" {
		v.bad("name", "empty")
	}
	if s.Nodes < 2 || s.Nodes > MaxNodes {
		v.bad("nodes", "%d outside 2..%d", s.Nodes, MaxNodes)
	}
	if v.dur <= 0 || v.dur > MaxDuration {
		v.bad("duration", "%v outside (0, %v]", v.dur, MaxDuration)
	}
	if len(s.Agencies) == 0 {
		v.bad("agencies", "no agency kinds")
	}
	for _, k := range sortedKeys(s.Agencies) {
		if w := s.Agencies[k]; !(w > 0) || math.IsInf(w, 0) || k == "" || len(k) > 64 {
			v.bad("agencies."+k, "weight %v must be positive and the name 1..64 bytes", w)
		}
	}
	if s.People.Count < 1 || s.People.Count > MaxPeople {
		v.bad("people.count", "%d outside 1..%d", s.People.Count, MaxPeople)
	}
	if s.People.MaxAgencies < 1 || s.People.MaxAgencies > 1000 {
		v.bad("people.max_agencies", "%d outside 1..1000", s.People.MaxAgencies)
	}
	if s.Nodes >= 2 && s.People.MaxAgencies > s.Nodes {
		v.bad("people.max_agencies", "%d exceeds nodes %d", s.People.MaxAgencies, s.Nodes)
	}
	if !(s.People.S > 1 && s.People.S <= 10) {
		v.bad("people.zipf_s", "%v outside (1, 10]", s.People.S)
	}
}

// workload checks the steady publications and the bulk imports.
func (v *problems) workload(s *Scenario) {
	if !(s.Publish.Rate >= 0 && s.Publish.Rate <= 100_000) {
		v.bad("publish.rate_per_second", "%v outside 0..100000", s.Publish.Rate)
	}
	v.within("publish.start", s.Publish.Start)
	v.within("publish.stop", s.Publish.Stop)
	if s.Publish.Stop != 0 && s.Publish.Stop < s.Publish.Start {
		v.bad("publish.stop", "%v before start %v", s.Publish.Stop.D(), s.Publish.Start.D())
	}
	for i, b := range s.BulkImports {
		p := fmt.Sprintf("bulk_imports[%d]", i)
		if b.Node < 0 || b.Node >= s.Nodes {
			v.bad(p+".node", "%d outside 0..%d", b.Node, s.Nodes-1)
		}
		v.within(p+".at", b.At)
		if b.Entries < 1 || b.Entries > 1_000_000 {
			v.bad(p+".entries", "%d outside 1..1000000", b.Entries)
		}
	}
}

// partitions checks that each partition names its side exactly one way
// and lies within the run.
func (v *problems) partitions(s *Scenario) {
	for i, p := range s.Partitions {
		path := fmt.Sprintf("partitions[%d]", i)
		given := 0
		if p.Fraction != 0 {
			given++
			v.frac(path+".fraction", p.Fraction)
		}
		if len(p.Nodes) > 0 {
			given++
			for j, n := range p.Nodes {
				if n < 0 || n >= s.Nodes {
					v.bad(fmt.Sprintf("%s.nodes[%d]", path, j), "%d outside 0..%d", n, s.Nodes-1)
				}
			}
			if len(p.Nodes) >= s.Nodes {
				v.bad(path+".nodes", "cuts off every node")
			}
		}
		if p.Region != nil {
			given++
			if s.Network.Regions < 2 || *p.Region < 0 || *p.Region >= s.Network.Regions {
				v.bad(path+".region", "%d is not one of network.regions (%d)", *p.Region, s.Network.Regions)
			}
		}
		if given != 1 {
			v.bad(path, "give exactly one of fraction, nodes, region (got %d)", given)
		}
		v.within(path+".from", p.From)
		if p.Until <= p.From {
			v.bad(path+".until", "%v not after from %v", p.Until.D(), p.From.D())
		}
	}
}

func (v *problems) churn(s *Scenario) {
	for i, c := range s.Churn {
		path := fmt.Sprintf("churn[%d]", i)
		if c.Action != ChurnLeave && c.Action != ChurnCrash {
			v.bad(path+".action", "%q is not %q or %q", c.Action, ChurnLeave, ChurnCrash)
		}
		v.frac(path+".fraction", c.Fraction)
		v.within(path+".at", c.At)
		if c.RejoinAfter < 0 {
			v.bad(path+".rejoin_after", "negative")
		}
		if c.FailureDetection < 0 {
			v.bad(path+".failure_detection", "negative")
		}
		if c.KeepDisk && c.RejoinAfter == 0 {
			v.bad(path+".keep_disk", "set but the nodes never rejoin")
		}
	}
}

// protocol checks the replication mode and the engine parameters.
func (v *problems) protocol(s *Scenario) {
	switch s.Replication {
	case "full":
	case "sharded":
		v.bad("replication", "\"sharded\" is not implemented by the protocol core yet; only \"full\"")
	default:
		v.bad("replication", "%q is not \"full\"", s.Replication)
	}
	pr := s.Protocol
	if pr.Fanout < 1 || pr.Fanout > 64 {
		v.bad("protocol.fanout", "%d outside 1..64", pr.Fanout)
	}
	if pr.PushInterval.D() < time.Millisecond || pr.PushInterval.D() > time.Minute {
		v.bad("protocol.push_interval", "%v outside 1ms..1m", pr.PushInterval.D())
	}
	if pr.AntiEntropyInterval.D() < 10*time.Millisecond || pr.AntiEntropyInterval.D() > time.Hour {
		v.bad("protocol.anti_entropy_interval", "%v outside 10ms..1h", pr.AntiEntropyInterval.D())
	}
	if pr.MaxMessageSize != 0 && (pr.MaxMessageSize < 1024 || pr.MaxMessageSize > 16<<20) {
		v.bad("protocol.max_message_size", "%d outside 1024..16777216", pr.MaxMessageSize)
	}
	if pr.MaxPushQueue < 0 {
		v.bad("protocol.max_push_queue", "negative")
	}
	if pr.MaxHops < 0 || pr.MaxHops > 254 {
		v.bad("protocol.max_hops", "%d outside 0..254", pr.MaxHops)
	}
	if pr.RelayFanout < 0 || pr.RelayFanout > 256 {
		v.bad("protocol.relay_fanout", "%d outside 0..256", pr.RelayFanout)
	}
	if pr.MaxSendRate < 0 {
		v.bad("protocol.max_send_rate", "negative")
	}
	if pr.StampThreshold < 0 || pr.StampThreshold > 1<<16 {
		v.bad("protocol.stamp_threshold", "%d outside 0..65536", pr.StampThreshold)
	}
}

// sampling checks the lookup probes, the sample interval and the digest
// depth.
func (v *problems) sampling(s *Scenario) {
	if !(s.Lookups >= 0 && s.Lookups <= 100_000) {
		v.bad("lookups_per_second", "%v outside 0..100000", s.Lookups)
	}
	if si := s.SampleInterval.D(); si < 10*time.Millisecond || (v.dur > 0 && v.dur/si > 100_000) {
		v.bad("sample_interval", "%v too small (≥ 10ms and at most 100000 samples per run)", si)
	}
	if s.DigestDepth < 1 || s.DigestDepth > 6 {
		v.bad("digest_depth", "%d outside 1..6", s.DigestDepth)
	}
}

func (n *Network) validate(bad func(path, format string, args ...any)) {
	lat := func(path string, l Latency) {
		if err := l.simnet().Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				bad(path, "%s", line)
			}
		}
	}
	lat("network.latency", n.Latency)
	if !(n.Loss >= 0 && n.Loss < 1) {
		bad("network.loss", "%v outside [0, 1)", n.Loss)
	}
	if n.Regions < 0 || n.Regions > 1000 {
		bad("network.regions", "%d outside 0..1000", n.Regions)
	}
	if n.WideLatency != nil {
		lat("network.wide_latency", *n.WideLatency)
	}
	if !(n.WideLoss >= 0 && n.WideLoss < 1) {
		bad("network.wide_loss", "%v outside [0, 1)", n.WideLoss)
	}
	if n.Bandwidth < 0 {
		bad("network.bandwidth_bytes_per_second", "negative")
	}
	if n.MaxQueueDelay < 0 {
		bad("network.max_queue_delay", "negative")
	}
	if n.ServiceTime < 0 {
		bad("network.service_time", "negative")
	}
	if n.ServiceTime > 0 && n.SharedCPUs < 1 {
		bad("network.service_time", "%v needs shared_cpus ≥ 1 (got %d)", n.ServiceTime.D(), n.SharedCPUs)
	}
	if n.SharedCPUs < 0 || n.SharedCPUs > 1024 {
		bad("network.shared_cpus", "%d outside 0..1024", n.SharedCPUs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

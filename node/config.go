package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one agency node's configuration. The file format is flat
// `key = value` lines with `#` comments (see [WriteDefaultConfig]); every key
// is a field below.
type Config struct {
	// NodeID is this node's id in the federation (its enrolled descriptor's id).
	NodeID string
	// Agency is the agency's display name, e.g. "Northshire Children's Services".
	Agency string
	// Category is the agency's service category: children-social-care,
	// school, gp, emergency-department, …
	Category string
	// DataDir holds the node's databases (records.db, the locator replica,
	// the audit log). Default "signpost-data".
	DataDir string
	// Listen is the HTTP API and page address. Default "127.0.0.1:8080".
	Listen string
	// Purposes the node publishes its records under and lets its users look
	// up; must be a subset of what its descriptor authorises. Default
	// safeguarding, direct-care.
	Purposes []string
	// Epoch is the token epoch in use. Default 1.
	Epoch uint32
	// Issuer is the node id that holds the federation key for Epoch; empty or
	// equal to NodeID means this node is the issuer.
	Issuer string
	// RetentionDefault is the retention given to records created without
	// retainUntil. Default 6 years (2190 days).
	RetentionDefault time.Duration
	// MaxRetention bounds retainUntil: the federation refuses entries that
	// expire later (locator.Policy.MaxRetention). Default 10 years.
	MaxRetention time.Duration
	// MaxBodyBytes bounds every request body except imports. Default 64 KiB.
	MaxBodyBytes int64
	// MaxImportBytes bounds a CSV import body. Default 64 MiB.
	MaxImportBytes int64
	// MaxBatch bounds the blinded elements of one evaluation. Default 256.
	MaxBatch int
	// AllowedOrigins are the Origins accepted on the WebSocket and on
	// cookie-authenticated writes, besides the page's own origin.
	AllowedOrigins []string
	// ShutdownTimeout bounds graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration
	// Contact is what this node tells an authorised agency that asks whom to
	// contact (a duty desk, not a person's details). Default "".
	Contact string
	// ContactPolicy: "accept" answers contact requests with Contact at once;
	// "refer" records them for the agency's staff and answers "pending".
	// Default "accept".
	ContactPolicy string
	// UserRate and UserBurst bound each user's lookups and evaluations per
	// second at this node. Default 20/s, burst 200.
	UserRate, UserBurst float64
	// PeerRate and PeerBurst bound blinded elements per second per
	// requesting node at the issuer. Default 20000/s, burst 100000.
	PeerRate, PeerBurst float64

	// Federation (used by `signpost node`, see StackConfig).

	// GossipListen is the memberlist address. Default "127.0.0.1:7946".
	GossipListen string
	// PeerListen is the node-to-node mutual-TLS address. Default "127.0.0.1:7947".
	PeerListen string
	// Join lists gossip addresses of nodes to join at start.
	Join []string
	// AuthorityKeyFile is the federation authority's public key (PEM).
	AuthorityKeyFile string
	// CredentialsFile is this node's signed descriptor and private key (PEM).
	CredentialsFile string
	// GossipKeyFile holds the federation's gossip encryption key(s).
	GossipKeyFile string
	// IssuerKeyFile, on the issuer only, holds the federation's POPRF
	// private key (32 raw bytes, mode 0600).
	IssuerKeyFile string
	// IssuerPublicKey is the issuer's public key, base64, on every node.
	IssuerPublicKey string
}

// DefaultConfig returns the defaults, each documented on its field.
func DefaultConfig() Config {
	return Config{
		NodeID:           "",
		Agency:           "",
		Category:         "",
		DataDir:          "signpost-data",
		Listen:           "127.0.0.1:8080",
		Purposes:         []string{"safeguarding", "direct-care"},
		Epoch:            1,
		Issuer:           "",
		RetentionDefault: 2190 * 24 * time.Hour,
		MaxRetention:     10 * 365 * 24 * time.Hour,
		MaxBodyBytes:     64 << 10,
		MaxImportBytes:   64 << 20,
		MaxBatch:         256,
		AllowedOrigins:   nil,
		ShutdownTimeout:  10 * time.Second,
		Contact:          "",
		ContactPolicy:    "accept",
		UserRate:         20,
		UserBurst:        200,
		PeerRate:         20000,
		PeerBurst:        100000,
		GossipListen:     "127.0.0.1:7946",
		PeerListen:       "127.0.0.1:7947",
	}
}

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("node: invalid config")

// Validate reports every problem of c once defaulted (nil if none): what
// [New] and the stack refuse at start.
func (c Config) Validate() error {
	_, err := c.WithDefaults()
	return err
}

// WithDefaults returns a copy of c with zero fields defaulted, validated,
// reporting every problem at once (each wrapped in [ErrConfig]).
func (c Config) WithDefaults() (Config, error) {
	d := DefaultConfig()
	c.Purposes = slices.Clone(c.Purposes)
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	if c.DataDir == "" {
		c.DataDir = d.DataDir
	}
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if len(c.Purposes) == 0 {
		c.Purposes = d.Purposes
	}
	if c.Epoch == 0 {
		c.Epoch = d.Epoch
	}
	if c.Issuer == "" {
		c.Issuer = c.NodeID
	}
	if c.RetentionDefault == 0 {
		c.RetentionDefault = d.RetentionDefault
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxRetention == 0 {
		c.MaxRetention = d.MaxRetention
	}
	if c.MaxImportBytes == 0 {
		c.MaxImportBytes = d.MaxImportBytes
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.GossipListen == "" {
		c.GossipListen = d.GossipListen
	}
	if c.PeerListen == "" {
		c.PeerListen = d.PeerListen
	}
	c.Join = slices.Clone(c.Join)
	if c.ContactPolicy == "" {
		c.ContactPolicy = d.ContactPolicy
	}
	if c.UserRate == 0 {
		c.UserRate, c.UserBurst = d.UserRate, d.UserBurst
	}
	if c.PeerRate == 0 {
		c.PeerRate, c.PeerBurst = d.PeerRate, d.PeerBurst
	}
	var errs []error
	if c.ContactPolicy != "accept" && c.ContactPolicy != "refer" {
		errs = append(errs, errors.New(`contact_policy must be "accept" or "refer"`))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("node_id is required"))
	}
	if c.Category == "" {
		errs = append(errs, errors.New("category is required"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	// The syntax of purpose names has one home, wasm/purpose, which the
	// core does not import (see doc.go): node/stack's ValidateConfig checks
	// it. The core refuses any purpose outside c.Purposes.
	if c.UserRate < 0 || c.UserBurst < 1 || c.PeerRate < 0 || c.PeerBurst < 1 {
		errs = append(errs, errors.New("rate limits must be positive (user_rate, peer_rate > 0; user_burst, peer_burst at least 1)"))
	}
	if c.MaxBodyBytes < 1024 || c.MaxImportBytes < 1024 || c.MaxBatch < 1 || c.RetentionDefault < 0 {
		errs = append(errs, errors.New("limits must be positive (max_body_bytes and max_import_bytes at least 1024)"))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

// MaxConfigBytes bounds a config file.
const MaxConfigBytes = 1 << 20

// ParseConfig reads the `key = value` format over DefaultConfig. Unknown keys
// and malformed lines are errors (a typo must not silently fall back to a
// default).
func ParseConfig(r io.Reader) (Config, error) {
	c := DefaultConfig()
	sc := bufio.NewScanner(io.LimitReader(r, MaxConfigBytes))
	sc.Buffer(make([]byte, 4096), 64<<10)
	line := 0
	var errs []error
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: expected key = value", line))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if err := c.set(k, v); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", line, k, err))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Config) set(k, v string) error {
	var err error
	switch k {
	case "node_id":
		c.NodeID = v
	case "agency":
		c.Agency = v
	case "category":
		c.Category = v
	case "data_dir":
		c.DataDir = v
	case "listen":
		c.Listen = v
	case "purposes":
		c.Purposes = list(v)
	case "epoch":
		var n uint64
		n, err = strconv.ParseUint(v, 10, 32)
		c.Epoch = uint32(n)
	case "issuer":
		c.Issuer = v
	case "retention_default":
		c.RetentionDefault, err = time.ParseDuration(v)
	case "max_retention":
		c.MaxRetention, err = time.ParseDuration(v)
	case "max_body_bytes":
		c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64)
	case "max_import_bytes":
		c.MaxImportBytes, err = strconv.ParseInt(v, 10, 64)
	case "max_batch":
		c.MaxBatch, err = strconv.Atoi(v)
	case "allowed_origins":
		c.AllowedOrigins = list(v)
	case "shutdown_timeout":
		c.ShutdownTimeout, err = time.ParseDuration(v)
	case "contact":
		c.Contact = v
	case "contact_policy":
		c.ContactPolicy = v
	case "user_rate":
		c.UserRate, err = strconv.ParseFloat(v, 64)
	case "user_burst":
		c.UserBurst, err = strconv.ParseFloat(v, 64)
	case "peer_rate":
		c.PeerRate, err = strconv.ParseFloat(v, 64)
	case "peer_burst":
		c.PeerBurst, err = strconv.ParseFloat(v, 64)
	case "gossip_listen":
		c.GossipListen = v
	case "peer_listen":
		c.PeerListen = v
	case "join":
		c.Join = list(v)
	case "authority_key_file":
		c.AuthorityKeyFile = v
	case "credentials_file":
		c.CredentialsFile = v
	case "gossip_key_file":
		c.GossipKeyFile = v
	case "issuer_key_file":
		c.IssuerKeyFile = v
	case "issuer_public_key":
		c.IssuerPublicKey = v
	default:
		return errors.New("unknown key")
	}
	if err != nil {
		return errors.New("malformed value")
	}
	return nil
}

// WriteDefaultConfig writes a commented config with safe defaults for the
// given node id (what `signpost node init` prints).
func WriteDefaultConfig(w io.Writer, nodeID string) error {
	d := DefaultConfig()
	_, err := fmt.Fprintf(w, `# Signpost agency node configuration.
# Format: key = value; lines starting with # are comments. Unknown keys are errors.

# This node's id in the federation; must match its enrolled descriptor.
node_id = %s
# The agency's display name, shown to practitioners at other agencies.
agency = Example Agency
# Service category: children-social-care, school, gp, emergency-department, ...
category = children-social-care

# Where the node keeps its databases (records, locator replica, audit log).
data_dir = %s
# HTTP API and practitioner page. Loopback by default: put a TLS-terminating
# proxy in front before exposing it.
listen = %s

# Purposes this node publishes its records under and lets its users look up.
purposes = %s
# Token epoch and the node that holds the federation key for it (empty: this node).
epoch = %d
issuer =

# Retention for records created without retainUntil (Go duration).
retention_default = %s

# Limits.
max_body_bytes = %d
max_import_bytes = %d
max_batch = %d
# Extra Origins allowed on the WebSocket and cookie-authenticated writes.
allowed_origins =
shutdown_timeout = %s

# Contact requests from other agencies: "accept" answers with the contact
# below at once; "refer" records them for your staff and answers "pending".
contact = Duty desk, 01632 960000 (synthetic)
contact_policy = %s
# Per-user lookups/evaluations per second at this node, and per-node blinded
# elements per second at the issuer.
user_rate = %g
user_burst = %g
peer_rate = %g
peer_burst = %g

# Federation. Files come from the federation authority's enrolment.
gossip_listen = %s
peer_listen = %s
# Gossip addresses of nodes already in the federation (comma-separated).
join =
authority_key_file = authority.pub
credentials_file = node.pem
gossip_key_file = gossip.key
# On the issuer node only: the federation's token key (keep it secret).
issuer_key_file =
# Every node: the issuer's public key (base64).
issuer_public_key =
`, nodeID, d.DataDir, d.Listen, strings.Join(d.Purposes, ", "), d.Epoch, d.RetentionDefault,
		d.MaxBodyBytes, d.MaxImportBytes, d.MaxBatch, d.ShutdownTimeout,
		d.ContactPolicy, d.UserRate, d.UserBurst, d.PeerRate, d.PeerBurst, d.GossipListen, d.PeerListen)
	return err
}

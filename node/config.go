package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/signpost-federation/signpost/node/internal/contacts"
	"github.com/signpost-federation/signpost/node/internal/records"
)

// Config is one agency node's configuration. Its file format is TOML
// (see [ParseConfig] and [WriteDefaultConfig]): one flat table whose keys are
// the toml tags below, decoded strictly. The comment tags are what
// `signpost node init` writes above each key, so the documentation of a key
// lives here once. Keys tagged env may be overridden from the environment
// ([Config.ApplyEnv]): the addresses and the secret-file paths, which differ
// between a deployment's machines while the rest of the file does not.
type Config struct {
	// NodeID is this node's id in the federation (its enrolled descriptor's id).
	NodeID string `toml:"node_id" comment:"This node's id in the federation; must match its enrolled descriptor."`
	// Agency is the agency's display name, e.g. "Northshire Children's Services".
	Agency string `toml:"agency" comment:"The agency's display name, shown to practitioners at other agencies."`
	// Category is the agency's service category: children-social-care,
	// school, gp, emergency-department, …
	Category string `toml:"category" comment:"Service category: children-social-care, school, gp, emergency-department, ..."`
	// DataDir holds the node's databases (records.db, the locator replica,
	// the audit log). Default "signpost-data".
	DataDir string `toml:"data_dir" env:"SIGNPOST_DATA_DIR" comment:"Where the node keeps its databases (records, locator replica, audit log),\nrelative to this file unless absolute."`
	// Listen is the HTTP API and page address. Default "127.0.0.1:8080".
	Listen string `toml:"listen" env:"SIGNPOST_LISTEN" comment:"HTTP API and practitioner page. Loopback by default. Any other address needs\nTLS: tls_cert_file and tls_key_file, or a TLS-terminating proxy in front and\ninsecure_http = true."`
	// TLSCertFile and TLSKeyFile (PEM), if set, make the node serve HTTPS
	// on Listen itself. The key file must not be readable by group or
	// others.
	TLSCertFile string `toml:"tls_cert_file" env:"SIGNPOST_TLS_CERT_FILE" comment:"Serve HTTPS directly: certificate chain and private key (PEM, key mode 0600)."`
	TLSKeyFile  string `toml:"tls_key_file" env:"SIGNPOST_TLS_KEY_FILE"`
	// InsecureHTTP lets a non-loopback Listen serve plain HTTP, for a node
	// behind a TLS-terminating proxy. It is logged as a warning at start.
	InsecureHTTP bool `toml:"insecure_http" comment:"Serve plain HTTP on a non-loopback listen address (only behind a TLS proxy;\nlogged as a warning at start)."`
	// TrustedProxies lists the proxies (CIDRs, or single addresses) whose
	// X-Forwarded-For header is believed for the client's address, which
	// sign-in limits are keyed by. Setting it also marks the session cookie
	// Secure (the proxy serves TLS).
	TrustedProxies []string `toml:"trusted_proxies" comment:"TLS-terminating proxies (CIDRs) whose X-Forwarded-For names the client's\naddress; the session cookie is then Secure. Empty: no header is believed."`
	// Purposes the node publishes its records under and lets its users look
	// up; must be a subset of what its descriptor authorises. Default
	// safeguarding, direct-care.
	Purposes []string `toml:"purposes" comment:"Purposes this node publishes its records under and lets its users look up\n(lowercase words joined by single hyphens); a subset of its descriptor's."`
	// IssuerTimeout bounds how long a tokenisation waits for the token
	// issuers' partial evaluations (the first t valid answers are used).
	// Default 3s.
	IssuerTimeout Duration `toml:"issuer_timeout" comment:"How long to wait for the token issuers' answers (the first t valid ones\nare used) before answering 503 issuers_unavailable."`
	// IssuerHedge is how long a tokenisation waits for the t issuers it
	// asked first before asking the others too; a failed or refused answer
	// asks the next at once. Each blinded element adds 200µs, for the
	// issuers' work on a large batch. Default 100ms.
	IssuerHedge Duration `toml:"issuer_hedge" comment:"A tokenisation asks t issuers (this node first if it is one, then those that\nanswered well lately) and asks the others too if these have not all answered\nwithin this time, plus 200µs a blinded element; a failure asks the next at once."`
	// RetentionDefault is the retention given to records created without
	// retainUntil. Default 6 years (2190 days).
	RetentionDefault Duration `toml:"retention_default" comment:"Retention for records created without retainUntil (\"2190d\", \"36h\", ...)."`
	// MaxRetention bounds retainUntil: the federation refuses entries that
	// expire later (locator.Policy.MaxRetention). Default 10 years.
	MaxRetention Duration `toml:"max_retention" comment:"The longest retainUntil accepted; the federation refuses entries that expire later."`
	// EntryLifetime, if set, makes each published entry expire this long
	// after it is published (or at its record's retention end, if sooner);
	// the node publishes it again a quarter of the lifetime before, so
	// that the entries of a node that vanished without withdrawing them
	// fade. Default 0: entries expire with their record.
	EntryLifetime Duration `toml:"entry_lifetime" comment:"If set, each published entry expires this long after it is published (the node\nrefreshes it before); 0: entries expire at their record's retention end."`
	// MaxBodyBytes bounds every request body except imports. Default 64 KiB.
	MaxBodyBytes int64 `toml:"max_body_bytes" comment:"Limits: request body, CSV import body, blinded elements per evaluation."`
	// MaxImportBytes bounds a CSV import body. Default 64 MiB.
	MaxImportBytes int64 `toml:"max_import_bytes"`
	// MaxBatch bounds the blinded elements of one evaluation. Default 256.
	MaxBatch int `toml:"max_batch"`
	// AllowedOrigins are the Origins accepted on the WebSocket and on
	// cookie-authenticated writes, besides the page's own origin.
	AllowedOrigins []string `toml:"allowed_origins" comment:"Extra Origins allowed on the WebSocket and cookie-authenticated writes."`
	// ShutdownTimeout bounds graceful shutdown. Default 10s.
	ShutdownTimeout Duration `toml:"shutdown_timeout" comment:"How long a graceful shutdown may take."`
	// AuditHeadInterval is how often the node saves its audit log's signed
	// tree head and offers it to every other member to witness. Default 30s.
	AuditHeadInterval Duration `toml:"audit_head_interval" comment:"How often the audit log's signed head is saved and offered to the other\nmembers to witness (docs/AUDIT.md)."`
	// Contact is what this node tells an authorised agency that asks whom to
	// contact (a duty desk, not a person's details). Default "".
	Contact string `toml:"contact" comment:"Contact requests from other agencies: \"accept\" answers with the contact\nbelow at once; \"refer\" keeps them in your staff's inbox on the page, who\nanswer with a named person or decline with a reason."`
	// ContactPolicy: "accept" answers contact requests with Contact at once
	// (when Contact is empty, as "refer"); "refer" keeps them for the
	// agency's staff (the inbox) and answers "pending". Default "accept".
	ContactPolicy string `toml:"contact_policy"`
	// ContactRetention is how long a contact request (sent or received)
	// is kept after its last change; the retention sweep deletes it then
	// and audits that. Default 90 days.
	ContactRetention Duration `toml:"contact_retention" comment:"How long a contact request is kept after its last change (\"90d\")."`
	// Shielded makes this node publish shielded entries: they name Broker,
	// not this node, and carry this node's identity sealed to the broker
	// (for services where being named as a holder can itself harm the
	// person). Publishing waits in the outbox while Broker is not a member.
	// Contact requests reach this node through the broker, and this node's
	// staff decide whether to be named. Default false.
	Shielded bool `toml:"shielded" comment:"Shielded service: entries name the broker below instead of this agency, and\nrequests come through it; your staff decide whether to be named to the asker."`
	// Broker is the node that speaks for a shielded node (e.g. the area's
	// safeguarding hub); its operator lists this node in its broker_for.
	Broker string `toml:"broker"`
	// BrokerFor lists the shielded nodes this node relays contact requests
	// for, as their broker; a request for any other is refused. Default
	// empty: this node is nobody's broker.
	BrokerFor []string `toml:"broker_for" comment:"The shielded nodes this node is the broker for (relays contact requests to)."`
	// UserRate and UserBurst bound each user's lookups and evaluations per
	// second at this node. Default 20/s, burst 200.
	UserRate  float64 `toml:"user_rate" comment:"Per-user lookups and evaluations per second at this node, and per-node\nblinded elements per second at the issuer."`
	UserBurst float64 `toml:"user_burst"`
	// TokenRate and TokenBurst are UserRate and UserBurst for API tokens
	// (system callers: a case system, `signpost locate` over a file), whose
	// batch work a person's rate would throttle; each token still has its
	// daily quota. 0 takes the user rate and burst. Default 0.
	TokenRate  float64 `toml:"token_rate" comment:"The same for each API token (a system caller: a case system, a batch edge\nclient); 0 takes user_rate and user_burst. Daily quotas still apply."`
	TokenBurst float64 `toml:"token_burst"`
	// PeerRate and PeerBurst bound blinded elements per second per
	// requesting node at the issuer. Default 20000/s, burst 100000.
	PeerRate  float64 `toml:"peer_rate"`
	PeerBurst float64 `toml:"peer_burst"`
	// DailyLookups is how many lookups (POST /v1/locate and /v1/lookup)
	// one person may make at this node in a UTC day; DailyTokenLookups the
	// same for each API token (a system caller) that has no quota of its
	// own (`signpost user quota`). Default 300 and 20000.
	DailyLookups      int `toml:"daily_lookups" comment:"Daily lookup quotas (locate and lookup, per UTC day): per person, and per API\ntoken (a system). Past the share below, operators are alerted (metric\nsignpost_quota_alerts_total and a quota-alert audit line), once per user and day."`
	DailyTokenLookups int `toml:"daily_token_lookups"`
	// QuotaAlertShare is the share of a daily quota past which the node
	// alerts its operators, once per user and day. Default 0.8.
	QuotaAlertShare float64 `toml:"quota_alert_share"`
	// WatchersPerUser and WatchersPerNode bound the open /v1/watch
	// connections of one user and of the whole node. Default 8 and 1000.
	WatchersPerUser int `toml:"watchers_per_user" comment:"Live watches (/v1/watch): open connections per user and per node, how long\none may go without a message either way, and how long one may last."`
	WatchersPerNode int `toml:"watchers_per_node"`
	// WatchIdle closes a watch that neither sent nor received a message
	// (pings aside) for this long. Default 30 minutes.
	WatchIdle Duration `toml:"watch_idle"`
	// WatchLifetime closes any watch this long after it opened; the page
	// offers to watch again. Default 8 hours.
	WatchLifetime Duration `toml:"watch_lifetime"`
	// WatchExpiry is how long a stored watch (POST /v1/watches) lasts
	// after it was started or last renewed, unless the practitioner stops
	// it first: from 1 hour to 366 days. Default 90 days. (WatchLifetime,
	// above, is the life of one WebSocket connection.)
	WatchExpiry Duration `toml:"watch_expiry" comment:"Stored watches (/v1/watches), held for the practitioner across pages and\nrestarts: how long one lasts unless stopped (1h to 366d), and how many one\npractitioner may keep."`
	// WatchesPerUser bounds one practitioner's stored watches. Default 100.
	WatchesPerUser int `toml:"watches_per_user"`

	// Federation (used by `signpost node`, see stack.StackConfig).

	// GossipListen is the memberlist address. Default "127.0.0.1:7946".
	GossipListen string `toml:"gossip_listen" env:"SIGNPOST_GOSSIP_LISTEN" comment:"Federation. The files come from the federation authority's enrolment.\nGossip (memberlist) and node-to-node mutual-TLS addresses."`
	// PeerListen is the node-to-node mutual-TLS address. Default "127.0.0.1:7947".
	PeerListen string `toml:"peer_listen" env:"SIGNPOST_PEER_LISTEN"`
	// Join lists gossip addresses of nodes to join at start.
	Join []string `toml:"join" comment:"Gossip addresses of nodes already in the federation."`
	// AuthorityKeyFile is the federation authority's public key (PEM).
	AuthorityKeyFile string `toml:"authority_key_file" env:"SIGNPOST_AUTHORITY_KEY_FILE"`
	// CredentialsFile is this node's signed descriptor and private key (PEM).
	CredentialsFile string `toml:"credentials_file" env:"SIGNPOST_CREDENTIALS_FILE"`
	// GossipKeyFile holds the federation's gossip encryption key(s).
	GossipKeyFile string `toml:"gossip_key_file" env:"SIGNPOST_GOSSIP_KEY_FILE"`
	// KeyRecordsFile holds the federation's signed token key records (the
	// authority signs each DKG's result); the node also adopts newer ones
	// from its peers.
	KeyRecordsFile string `toml:"key_records_file" env:"SIGNPOST_KEY_RECORDS_FILE" comment:"Token keys: the federation's signed key records (from the authority), and,\non an issuer, the directory of this node's key shares (owner-only)."`
	// SharesDir holds this node's shares of token keys if it is an issuer
	// (mode 0700, files 0600). Default DataDir/keys.
	SharesDir string `toml:"shares_dir" env:"SIGNPOST_SHARES_DIR"`
}

// DefaultConfig returns the defaults, each documented on its field.
func DefaultConfig() Config {
	return Config{
		NodeID:            "",
		Agency:            "",
		Category:          "",
		DataDir:           "signpost-data",
		Listen:            "127.0.0.1:8080",
		Purposes:          []string{"safeguarding", "direct-care"},
		IssuerTimeout:     DurationOf(3 * time.Second),
		IssuerHedge:       DurationOf(100 * time.Millisecond),
		RetentionDefault:  DurationOf(2190 * 24 * time.Hour),
		MaxRetention:      DurationOf(10 * 365 * 24 * time.Hour),
		MaxBodyBytes:      64 << 10,
		MaxImportBytes:    64 << 20,
		MaxBatch:          256,
		AllowedOrigins:    nil,
		ShutdownTimeout:   DurationOf(10 * time.Second),
		AuditHeadInterval: DurationOf(30 * time.Second),
		Contact:           "",
		ContactPolicy:     "accept",
		ContactRetention:  DurationOf(90 * 24 * time.Hour),
		UserRate:          20,
		UserBurst:         200,
		PeerRate:          20000,
		PeerBurst:         100000,
		DailyLookups:      300,
		DailyTokenLookups: 20000,
		QuotaAlertShare:   0.8,
		WatchersPerUser:   8,
		WatchersPerNode:   1000,
		WatchIdle:         DurationOf(30 * time.Minute),
		WatchLifetime:     DurationOf(8 * time.Hour),
		WatchExpiry:       DurationOf(90 * 24 * time.Hour),
		WatchesPerUser:    100,
		Shielded:          false,
		Broker:            "",
		BrokerFor:         nil,
		GossipListen:      "127.0.0.1:7946",
		PeerListen:        "127.0.0.1:7947",
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
	c.Join = slices.Clone(c.Join)
	c.TrustedProxies = slices.Clone(c.TrustedProxies)
	c.BrokerFor = slices.Clone(c.BrokerFor)
	if len(c.Purposes) == 0 {
		c.Purposes = d.Purposes
	}
	// A zero field takes its default (cmp.Or: the first non-zero).
	c.DataDir = cmp.Or(c.DataDir, d.DataDir)
	c.Listen = cmp.Or(c.Listen, d.Listen)
	c.IssuerTimeout = cmp.Or(c.IssuerTimeout, d.IssuerTimeout)
	c.IssuerHedge = cmp.Or(c.IssuerHedge, d.IssuerHedge)
	c.RetentionDefault = cmp.Or(c.RetentionDefault, d.RetentionDefault)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, d.MaxBodyBytes)
	c.MaxRetention = cmp.Or(c.MaxRetention, d.MaxRetention)
	c.MaxImportBytes = cmp.Or(c.MaxImportBytes, d.MaxImportBytes)
	c.MaxBatch = cmp.Or(c.MaxBatch, d.MaxBatch)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, d.ShutdownTimeout)
	c.AuditHeadInterval = cmp.Or(c.AuditHeadInterval, d.AuditHeadInterval)
	c.GossipListen = cmp.Or(c.GossipListen, d.GossipListen)
	c.PeerListen = cmp.Or(c.PeerListen, d.PeerListen)
	c.ContactPolicy = cmp.Or(c.ContactPolicy, d.ContactPolicy)
	c.ContactRetention = cmp.Or(c.ContactRetention, d.ContactRetention)
	c.DailyLookups = cmp.Or(c.DailyLookups, d.DailyLookups)
	c.DailyTokenLookups = cmp.Or(c.DailyTokenLookups, d.DailyTokenLookups)
	c.QuotaAlertShare = cmp.Or(c.QuotaAlertShare, d.QuotaAlertShare)
	c.WatchersPerUser = cmp.Or(c.WatchersPerUser, d.WatchersPerUser)
	c.WatchersPerNode = cmp.Or(c.WatchersPerNode, d.WatchersPerNode)
	c.WatchIdle = cmp.Or(c.WatchIdle, d.WatchIdle)
	c.WatchLifetime = cmp.Or(c.WatchLifetime, d.WatchLifetime)
	c.WatchExpiry = cmp.Or(c.WatchExpiry, d.WatchExpiry)
	c.WatchesPerUser = cmp.Or(c.WatchesPerUser, d.WatchesPerUser)
	// A rate and its burst default together: a burst set without its rate
	// would otherwise pair with the default rate.
	if c.UserRate == 0 {
		c.UserRate, c.UserBurst = d.UserRate, d.UserBurst
	}
	if c.PeerRate == 0 {
		c.PeerRate, c.PeerBurst = d.PeerRate, d.PeerBurst
	}
	if c.TokenRate == 0 {
		c.TokenRate, c.TokenBurst = c.UserRate, c.UserBurst
	}
	var errs []error
	if c.ContactPolicy != "accept" && c.ContactPolicy != "refer" {
		errs = append(errs, errors.New(`contact_policy must be "accept" or "refer"`))
	}
	if c.ContactRetention.D() < time.Hour {
		errs = append(errs, errors.New("contact_retention must be at least 1h"))
	}
	if c.NodeID == "" {
		errs = append(errs, errors.New("node_id is required"))
	}
	if c.Category == "" {
		errs = append(errs, errors.New("category is required"))
	} else if !records.ValidCategory(c.Category) {
		errs = append(errs, errors.New("category must be lowercase letters and digits in words joined by single hyphens (e.g. children-social-care)"))
	}
	if host, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	} else if !isLoopback(host) && !c.TLS() && !c.InsecureHTTP {
		errs = append(errs, fmt.Errorf("listen %q is not a loopback address and the node has no TLS: set tls_cert_file and tls_key_file, or, behind a TLS-terminating proxy, insecure_http = true", c.Listen))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file go together"))
	}
	if _, err := parseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	// The syntax of purpose names has one home, wasm/purpose, which the
	// core does not import (see doc.go): node/stack's ValidateConfig checks
	// it. The core refuses any purpose outside c.Purposes.
	if c.UserRate < 0 || c.UserBurst < 1 || c.PeerRate < 0 || c.PeerBurst < 1 || c.TokenRate < 0 || c.TokenBurst < 1 {
		errs = append(errs, errors.New("rate limits must be positive (user_rate, token_rate, peer_rate > 0; user_burst, token_burst, peer_burst at least 1)"))
	}
	if c.IssuerHedge.D() < 0 || c.IssuerHedge.D() >= c.IssuerTimeout.D() {
		errs = append(errs, errors.New("issuer_hedge must be positive and shorter than issuer_timeout"))
	}
	if c.AuditHeadInterval.D() < time.Second {
		errs = append(errs, errors.New("audit_head_interval must be at least 1s"))
	}
	if c.MaxBodyBytes < 1024 || c.MaxImportBytes < 1024 || c.MaxBatch < 1 || c.RetentionDefault.D() < 0 {
		errs = append(errs, errors.New("limits must be positive (max_body_bytes and max_import_bytes at least 1024)"))
	}
	if l := c.EntryLifetime.D(); l != 0 && l < time.Hour {
		errs = append(errs, errors.New("entry_lifetime must be 0 (entries expire with their record) or at least 1h"))
	}
	if c.DailyLookups < 1 || c.DailyTokenLookups < 1 || c.QuotaAlertShare <= 0 || c.QuotaAlertShare > 1 {
		errs = append(errs, errors.New("quotas must be positive (daily_lookups, daily_token_lookups at least 1; quota_alert_share in (0, 1])"))
	}
	if c.WatchersPerUser < 1 || c.WatchersPerNode < c.WatchersPerUser || c.WatchIdle.D() <= 0 || c.WatchLifetime.D() <= 0 {
		errs = append(errs, errors.New("watch limits must be positive (watchers_per_node at least watchers_per_user)"))
	}
	if c.WatchExpiry.D() < time.Hour || c.WatchExpiry.D() > maxWatchExpiry {
		errs = append(errs, errors.New("watch_expiry must be from 1h to 366d"))
	}
	if c.WatchesPerUser < 1 {
		errs = append(errs, errors.New("watches_per_user must be at least 1"))
	}
	switch {
	case c.Shielded && (c.Broker == "" || len(c.Broker) > contacts.MaxIDLen):
		errs = append(errs, errors.New("shielded = true needs broker: the node id of the node that speaks for this one"))
	case c.Shielded && c.Broker == c.NodeID:
		errs = append(errs, errors.New("broker must be another node"))
	case !c.Shielded && c.Broker != "":
		errs = append(errs, errors.New("broker is set but shielded is not: set shielded = true, or remove broker"))
	}
	for _, id := range c.BrokerFor {
		if id == "" || len(id) > contacts.MaxIDLen || id == c.NodeID {
			errs = append(errs, fmt.Errorf("broker_for: %q must name another node", id))
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return c, nil
}

// TLS reports whether the node serves HTTPS itself.
func (c Config) TLS() bool { return c.TLSCertFile != "" && c.TLSKeyFile != "" }

// SecureCookies reports whether the session cookie must be Secure: the node
// serves TLS, or a trusted proxy does in front of it.
func (c Config) SecureCookies() bool { return c.TLS() || len(c.TrustedProxies) > 0 }

// TrustedProxyPrefixes returns TrustedProxies parsed (a single address as a
// one-address prefix); entries that do not parse are left out, which
// [Config.Validate] reports.
func (c Config) TrustedProxyPrefixes() []netip.Prefix {
	p, _ := parseProxies(c.TrustedProxies)
	return p
}

func parseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			errs = append(errs, fmt.Errorf("trusted_proxies: %q is not a CIDR (10.0.0.0/8) or an address", s))
		}
	}
	return out, errors.Join(errs...)
}

// isLoopback reports whether a listen host is a loopback address or
// "localhost"; the empty host (every interface) is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// maxWatchExpiry bounds Config.WatchExpiry: a stored watch is renewed by
// its practitioner, never kept for years by a setting.
const maxWatchExpiry = 366 * 24 * time.Hour

package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
)

// TestDefaultConfigRoundTrip: what `signpost node init` writes is TOML that
// decodes, strictly, to the defaults it was written from, with every key
// commented where its field says so.
func TestDefaultConfigRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteDefaultConfig(&b, "riverside-school"); err != nil {
		t.Fatal(err)
	}
	c, legacy, err := ParseConfig("init.toml", bytes.NewReader(b.Bytes()))
	if err != nil || legacy {
		t.Fatalf("the written default does not parse as TOML (legacy %v): %v\n%s", legacy, err, b.String())
	}
	want := DefaultConfig()
	want.NodeID, want.Agency, want.Category = "riverside-school", "Example Agency", "children-social-care"
	want.Contact = "Duty desk, 01632 960000 (synthetic)"
	want.AuthorityKeyFile, want.CredentialsFile, want.GossipKeyFile = "authority.pub", "node.pem", "gossip.key"
	if !reflect.DeepEqual(normalise(c), normalise(want)) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", c, want)
	}
	if _, err := c.WithDefaults(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, want := range []string{"retention_default = '2190d'", "shutdown_timeout = '10s'", "# This node's id in the federation", "SIGNPOST_LISTEN"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("written default lacks %q:\n%s", want, b.String())
		}
	}
}

// normalise makes nil and empty lists compare equal.
func normalise(c Config) Config {
	for _, l := range []*[]string{&c.Purposes, &c.AllowedOrigins, &c.Join, &c.TrustedProxies, &c.BrokerFor} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return c
}

// TestParseConfigErrors: every problem names the file, line, column and key,
// in the operator's words, and all problems come at once.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unknown key", "node_id = 'x'\n\nnode_idd = 'y'\n"},
		{"unknown keys", "listn = 'x'\n[tls]\ncert = 'c'\n"},
		{"twice", "node_id = 'x'\nnode_id = 'y'\n"},
		{"string for int", "max_batch = 'many'\n"},
		{"int for string", "listen = 8080\n"},
		{"list for string", "agency = ['a']\n"},
		{"string for list", "purposes = 'safeguarding'\n"},
		{"bad duration", "retention_default = 'soon'\n"},
		{"duration as number", "shutdown_timeout = 10\n"},
		{"syntax", "node_id = 'x'\nlisten = = 1\n"},
		{"unclosed", "node_id = 'x\n"},
		{"wrong type and unknown keys", "node_id = 'x'\nlisten = '0.0.0.0:80'\nlistn = 'a'\nmax_batch = 'many'\n[tls]\ncert = 'c'\n"},
		{"bad duration and unknown key", "shutdown_timeout = 10\nnode_idd = 'y'\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, legacy, err := ParseConfig("node.toml", strings.NewReader(tc.in))
			if err == nil || legacy || !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v (legacy %v), want an ErrConfig", err, legacy)
			}
			testutil.Golden(t, filepath.Join("testdata", "config", "errors", strings.ReplaceAll(tc.name, " ", "-")+".golden"), []byte(err.Error()+"\n"))
		})
	}
}

// TestLegacyConfig: a file in the old key = value format still loads, for
// one release, to the same configuration as its conversion to TOML, and says
// it is legacy; the conversion keeps the comments.
func TestLegacyConfig(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "config", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c, legacy, err := ParseConfig("legacy.conf", bytes.NewReader(old))
	if err != nil || !legacy {
		t.Fatalf("legacy file: legacy %v, err %v", legacy, err)
	}
	var b bytes.Buffer
	if err := WriteDefaultConfig(&b, "harbour-gp"); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := ParseConfig("init.toml", &b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalise(c), normalise(fresh)) {
		t.Fatalf("the old default and today's differ:\n old %+v\n new %+v", c, fresh)
	}
	conv, err := ConvertLegacyConfig(bytes.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", "config", "legacy.toml"), conv)
	back, legacy, err := ParseConfig("legacy.toml", bytes.NewReader(conv))
	if err != nil || legacy || !reflect.DeepEqual(back, c) {
		t.Fatalf("converted: legacy %v, err %v, %+v", legacy, err, back)
	}
	for _, tc := range []struct{ in, want string }{
		{"node_id = x\nnode_idd = y\n", "line 2: node_idd: unknown key"},
		{"node_id x\n", "line 1: expected key = value"},
		{"max_batch = many things\n", "line 1: max_batch: malformed value"},
	} {
		if _, err := ConvertLegacyConfig(strings.NewReader(tc.in)); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("convert %q: got %v, want %q", tc.in, err, tc.want)
		}
		// Neither TOML nor the old format: the TOML error is what is shown.
		if _, _, err := ParseConfig("bad.conf", strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), "bad.conf:1:") {
			t.Errorf("parse %q: got %v, want the TOML error", tc.in, err)
		}
	}
}

// TestApplyEnv: the addresses and secret files come from the environment
// when set there, typed as in the file; other keys cannot be overridden; a
// bad value names the variable and not the value.
func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"SIGNPOST_LISTEN":     "127.0.0.1:9090",
		"SIGNPOST_SHARES_DIR": "/run/secrets/shares",
		"SIGNPOST_NODE_ID":    "not-overridable",
	}
	c := DefaultConfig()
	c.NodeID = "gp"
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9090" || c.SharesDir != "/run/secrets/shares" || c.NodeID != "gp" || c.PeerListen != DefaultConfig().PeerListen {
		t.Fatalf("overrides: %+v", c)
	}
	bad := map[string]string{"SIGNPOST_DATA_DIR": "a\nb", "SIGNPOST_PEER_LISTEN": "x\x00y"}
	err := c.ApplyEnv(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "SIGNPOST_DATA_DIR") || !strings.Contains(err.Error(), "SIGNPOST_PEER_LISTEN") || strings.Contains(err.Error(), "a\nb") {
		t.Fatalf("got %v", err)
	}
	if got := EnvOverrides(); !slices.Contains(got, "SIGNPOST_LISTEN") || slices.Contains(got, "SIGNPOST_NODE_ID") {
		t.Fatalf("EnvOverrides: %v", got)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		text string
		d    time.Duration
	}{{"2190d", 2190 * 24 * time.Hour}, {"10s", 10 * time.Second}, {"36h0m0s", 36 * time.Hour}, {"1m30s", 90 * time.Second}, {"0s", 0}} {
		var d Duration
		if err := d.UnmarshalText([]byte(tc.text)); err != nil || d.D() != tc.d {
			t.Errorf("%q: %v %v", tc.text, d, err)
		}
		if b, _ := DurationOf(tc.d).MarshalText(); string(b) != tc.text {
			t.Errorf("%v written as %q, want %q", tc.d, b, tc.text)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "99999999d", "soon", "1 d"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %v", bad, d)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	c := DefaultConfig()
	c.ContactPolicy = "maybe"
	c.UserRate = -1 // a typo must not switch the limit off
	_, err := c.WithDefaults()
	for _, want := range []string{"node_id is required", "category is required", "contact_policy", "rate limits must be positive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	c = DefaultConfig()
	c.NodeID, c.Category = "a", "gp"
	got, err := c.WithDefaults()
	if err != nil || got.IssuerTimeout.D() != 3*time.Second || got.ShutdownTimeout.D() != 10*time.Second {
		t.Fatalf("defaults: %v %+v", err, got)
	}
}

// TestShieldedConfig: a shielded node names another node as its broker; a
// broker names the nodes it relays for; the defaults are neither.
func TestShieldedConfig(t *testing.T) {
	base := DefaultConfig()
	base.NodeID, base.Category = "clinic", "sexual-health"
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"shielded with broker", func(c *Config) { c.Shielded, c.Broker = true, "csc" }, ""},
		{"broker for", func(c *Config) { c.BrokerFor = []string{"clinic-2", "refuge"} }, ""},
		{"shielded without broker", func(c *Config) { c.Shielded = true }, "shielded = true needs broker"},
		{"own broker", func(c *Config) { c.Shielded, c.Broker = true, "clinic" }, "broker must be another node"},
		{"broker without shielded", func(c *Config) { c.Broker = "csc" }, "broker is set but shielded is not"},
		{"broker for itself", func(c *Config) { c.BrokerFor = []string{"clinic"} }, `broker_for: "clinic" must name another node`},
		{"broker for empty id", func(c *Config) { c.BrokerFor = []string{""} }, `broker_for: "" must name another node`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			got, err := c.WithDefaults()
			if tc.want == "" {
				if err != nil || got.Shielded != c.Shielded || got.Broker != c.Broker {
					t.Fatalf("got %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	var b bytes.Buffer
	WriteDefaultConfig(&b, "x")
	f.Add(b.String())
	old, _ := os.ReadFile(filepath.Join("testdata", "config", "legacy.conf"))
	f.Add(string(old))
	f.Add("node_id = a\ncategory = gp\npurposes = a, b,,c\n")
	f.Add("=\n=\n#\n")
	f.Add("node_id = 'a'\n[x]\ny = 1\nretention_default = '3d'\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, _, err := ParseConfig("fuzz.toml", strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error not wrapped in ErrConfig: %v", err)
			}
			return
		}
		c.WithDefaults() // must not panic
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add("localId,nhsNumber\nr1,9990000018\n")
	f.Add("r1,\"999 000 0018\",cin,2040-01-01\nr2,1\n\n")
	f.Add("\"unterminated\n")
	f.Add("a,b,c,d,e\n,\n")
	f.Fuzz(func(t *testing.T, s string) {
		last := 0
		ReadCSV(strings.NewReader(s), func(row CSVRow, bad *RowError) error {
			if bad == nil && row.Line < last {
				t.Fatalf("lines go backwards: %d after %d", row.Line, last)
			}
			if bad == nil {
				last = row.Line
			}
			return nil
		})
	})
}

// TestListenNeedsTLS: a node listening beyond loopback without TLS is
// refused at start unless insecure_http says a TLS proxy is in front
// (before, `listen = 0.0.0.0:8080` served plain HTTP without a word); the
// cookie is Secure whenever TLS or a trusted proxy is configured.
func TestListenNeedsTLS(t *testing.T) {
	base := DefaultConfig()
	base.NodeID, base.Category = "a", "gp"
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" if valid
		secure  bool
	}{
		{"loopback", func(c *Config) {}, "", false},
		{"localhost", func(c *Config) { c.Listen = "localhost:8080" }, "", false},
		{"ipv6 loopback", func(c *Config) { c.Listen = "[::1]:8080" }, "", false},
		{"every interface", func(c *Config) { c.Listen = "0.0.0.0:8080" }, "not a loopback address", false},
		{"empty host", func(c *Config) { c.Listen = ":8080" }, "not a loopback address", false},
		{"a hostname", func(c *Config) { c.Listen = "node.example:8080" }, "not a loopback address", false},
		{"with TLS", func(c *Config) { c.Listen, c.TLSCertFile, c.TLSKeyFile = "0.0.0.0:8443", "c.pem", "k.pem" }, "", true},
		{"insecure_http", func(c *Config) { c.Listen, c.InsecureHTTP = "0.0.0.0:8080", true }, "", false},
		{"behind a proxy", func(c *Config) {
			c.Listen, c.InsecureHTTP, c.TrustedProxies = "10.0.0.5:8080", true, []string{"10.0.0.0/8", "192.0.2.1"}
		}, "", true},
		{"cert without key", func(c *Config) { c.TLSCertFile = "c.pem" }, "go together", false},
		{"bad proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies", false},
	} {
		c := base
		tc.mod(&c)
		err := c.Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.wantErr)
		}
		if err == nil && c.SecureCookies() != tc.secure {
			t.Errorf("%s: SecureCookies %v", tc.name, c.SecureCookies())
		}
	}
	c := base
	c.TrustedProxies = []string{"10.1.2.3/8", "192.0.2.1", "::1"}
	if got := fmt.Sprint(c.TrustedProxyPrefixes()); got != "[10.0.0.0/8 192.0.2.1/32 ::1/128]" {
		t.Errorf("TrustedProxyPrefixes: %s", got)
	}
}

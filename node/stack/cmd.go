package stack

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/signpost-federation/signpost/federation"
	"github.com/signpost-federation/signpost/node"
	"github.com/signpost-federation/signpost/wasm"
)

// NodeMain is `signpost node`: run a node from a config file, write a
// commented default config (init), or import a CSV into a running node.
func NodeMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "init":
			return initMain(args[1:], stdout, stderr)
		case "import":
			return importMain(ctx, args[1:], stdout, stderr)
		case "config-convert":
			return convertMain(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (write one with `signpost node init`)")
	cacheFlag := fs.String(wasm.CacheFlag, "", wasm.CacheFlagUsage)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage:\n  signpost node --config FILE        run an agency's node until SIGINT/SIGTERM\n  signpost node init [-node-id ID]   print a commented config (TOML) with safe defaults\n  signpost node config-convert FILE  print an old key = value config as TOML\n  signpost node import -url URL -token TOKEN FILE.csv\n                                     import records into a running node")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "Environment variables override the config file's addresses and secret files:\n  "+strings.Join(node.EnvOverrides(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	sc, err := loadStackConfig(*path, os.LookupEnv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "signpost node:", err)
		return 1
	}
	sc.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	sc.WasmCacheDir = wasm.CommandCacheDir(*cacheFlag, stderr)
	s, err := StartStack(ctx, sc)
	if err != nil {
		fmt.Fprintln(stderr, "signpost node:", err)
		return 1
	}
	sc.Logger.Info("node serving", "addr", s.Addr.String(), "gossip", s.Agent.GossipAddr(), "peer", s.Agent.PeerAddr())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.Node.Config().ShutdownTimeout.D())
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		fmt.Fprintln(stderr, "signpost node: shutdown:", err)
		return 1
	}
	return 0
}

func initMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("node-id", "my-agency", "the node id the federation authority enrolled")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := node.WriteDefaultConfig(stdout, *id); err != nil {
		fmt.Fprintln(stderr, "signpost node init:", err)
		return 1
	}
	return 0
}

// loadStackConfig reads a config file, applies the environment's overrides
// (lookup is os.LookupEnv in production) and reads the federation files it
// names (relative paths are relative to the config file). A file in the old
// key = value format is read with a deprecation notice on stderr.
func loadStackConfig(path string, lookup func(string) (string, bool), stderr io.Writer) (StackConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return StackConfig{}, err
	}
	defer f.Close()
	cfg, legacy, err := node.ParseConfig(path, f)
	if err != nil {
		return StackConfig{}, err
	}
	if legacy {
		fmt.Fprintf(stderr, "signpost node: %s is in the old key = value format, read for this release only; convert it to TOML with:\n  signpost node config-convert %s > %s.toml\n", path, path, strings.TrimSuffix(path, filepath.Ext(path)))
	}
	if err := cfg.ApplyEnv(lookup); err != nil {
		return StackConfig{}, err
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg.DataDir = rel(cfg.DataDir)
	cfg.TLSCertFile, cfg.TLSKeyFile = rel(cfg.TLSCertFile), rel(cfg.TLSKeyFile)
	sc := StackConfig{Node: cfg, GossipListen: cfg.GossipListen, PeerListen: cfg.PeerListen, Join: cfg.Join}
	var errs []error
	// Key files others can read are refused before they are used, as ssh
	// refuses such a private key (StartStack checks tls_key_file and the
	// data directory).
	for _, f := range []struct{ key, path string }{
		{"credentials_file", cfg.CredentialsFile}, {"gossip_key_file", cfg.GossipKeyFile},
	} {
		if err := checkSecretFile(f.key, rel(f.path)); err != nil {
			errs = append(errs, err)
		}
	}
	if sc.AuthorityKey, err = federation.LoadAuthorityPublicKey(rel(cfg.AuthorityKeyFile)); err != nil {
		errs = append(errs, fmt.Errorf("authority_key_file: %w", err))
	}
	if sc.Credentials, err = federation.LoadCredentials(rel(cfg.CredentialsFile)); err != nil {
		errs = append(errs, fmt.Errorf("credentials_file: %w", err))
	}
	if sc.GossipKeys, err = federation.LoadGossipKeys(rel(cfg.GossipKeyFile)); err != nil {
		errs = append(errs, fmt.Errorf("gossip_key_file: %w", err))
	}
	if cfg.KeyRecordsFile != "" {
		if sc.KeyRecords, err = federation.LoadKeyRecords(rel(cfg.KeyRecordsFile), sc.AuthorityKey); err != nil {
			errs = append(errs, fmt.Errorf("key_records_file: %w", err))
		}
	}
	cfg.SharesDir = rel(cfg.SharesDir)
	sc.Node.SharesDir = cfg.SharesDir
	if len(errs) > 0 {
		return sc, fmt.Errorf("%w: %w", node.ErrConfig, errors.Join(errs...))
	}
	return sc, nil
}

// convertMain is `signpost node config-convert FILE`: the old key = value
// format as TOML on stdout, checked by decoding it as `signpost node` would.
func convertMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "Usage: signpost node config-convert FILE > FILE.toml")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "signpost node config-convert:", err)
		return 1
	}
	defer f.Close()
	out, err := node.ConvertLegacyConfig(f)
	if err == nil {
		_, _, err = node.ParseConfig(args[0]+" (converted)", bytes.NewReader(out))
	}
	if err != nil {
		fmt.Fprintln(stderr, "signpost node config-convert:", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// importMain posts a CSV to a running node in chunks, drawing a progress
// bar, and prints every rejected row with its line in the file.
func importMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("node import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the node's address")
	token := fs.String("token", os.Getenv("SIGNPOST_TOKEN"), "an operator API token (default $SIGNPOST_TOKEN)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || *token == "" {
		fmt.Fprintln(stderr, "Usage: signpost node import -url URL -token TOKEN FILE.csv\n(columns: localId,nhsNumber,category,retainUntil; a header row is optional)")
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "signpost node import:", err)
		return 1
	}
	defer f.Close()
	st, _ := f.Stat()
	rep, err := node.ImportFile(ctx, http.DefaultClient, *url, *token, f, st.Size(), func(done, total int64) {
		drawBar(stderr, done, total)
	})
	fmt.Fprintln(stderr)
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "line %d: %s: %s\n", e.Line, e.Code, e.Message)
	}
	for _, e := range rep.WithheldRows {
		fmt.Fprintf(stdout, "line %d: %s: %s\n", e.Line, e.Code, e.Message)
	}
	fmt.Fprintf(stdout, "imported %d, unchanged %d, withheld %d, failed %d\n", rep.Imported, rep.Unchanged, rep.Withheld, rep.Failed)
	if rep.Queued > 0 {
		fmt.Fprintf(stdout, "%d of the imported records wait in the node's outbox: the issuer could not be reached; the node publishes them when it can\n", rep.Queued)
	}
	if err != nil {
		fmt.Fprintln(stderr, "signpost node import:", err)
		return 1
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}

func drawBar(w io.Writer, done, total int64) {
	const width = 40
	if total <= 0 {
		total = 1
	}
	frac := float64(done) / float64(total)
	frac = min(frac, 1)
	n := int(frac * width)
	fmt.Fprintf(w, "\r[%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
}

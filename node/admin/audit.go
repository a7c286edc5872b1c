package admin

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

const auditUsage = `Usage: signpost audit <verify|head|prove|subject|pubkey> [flags]

  verify   [--data DIR | --log FILE] [--witnessed URL]...
           check every line, its signature under the node's audit public key
           and the node's saved head; exit 0 if intact, 1 naming the first
           bad line. With --witnessed, also fetch the heads other nodes hold
           for this node from the node at URL (GET /v1/audit/heads, with an
           auditor token from $SIGNPOST_TOKEN or --token-file) and check the
           log against each: a log cut short or forked after a witness saw
           it fails.
  head     --log FILE
           verify, then print the tree head (size, root, signature) as JSON
  prove    --log FILE --old-size M [--index I]
           print, as JSON, the current tree head, the root at size M and the
           RFC 9162 consistency proof from M to now (for a witness holding
           the head of size M), and with --index the inclusion proof of event I
  subject  --log FILE [--key FILE] (--ref HEX | --lookup-key HEX)...
           print, as JSON lines, every event naming the given subject refs
           (or the refs of the given lookup keys under the audit key)
  pubkey   [--data DIR | --log FILE]
           print the node's audit public key (hex): keep it elsewhere, and
           give it to --pubkey when verifying a copy of the log

--log defaults to <--data>/audit.log; --key to the log's path + ".key".
Every subcommand that reads the log checks its signatures under the public
key in <log>.pub (written by the node at start), or the one given by --pubkey
or --pubkey-file, and checks it against the head saved in <log>.head when
there is one. --no-signatures skips the signatures, and says so: without
them anyone who can write the file can rewrite it.
`

// AuditMain is `signpost audit`: it verifies an audit log (against the
// node's key, its saved head and the heads its witnesses hold), prints its
// tree head or public key, proves consistency, and finds the events about a
// subject.
func AuditMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, auditUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "verify", "head", "subject", "prove", "pubkey":
	default:
		fmt.Fprintf(stderr, "signpost audit: unknown subcommand %q\n\n%s", sub, auditUsage)
		return 2
	}
	fs := flag.NewFlagSet("signpost audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", ".", "the node's data directory")
	logPath := fs.String("log", "", "the audit log (default <data>/audit.log)")
	keyPath := fs.String("key", "", "the audit key file (default <log>.key)")
	pubHex := fs.String("pubkey", "", "hex Ed25519 public key that must have signed every tree head (default: the one in <log>.pub)")
	pubFile := fs.String("pubkey-file", "", "file holding that key (default <log>.pub)")
	noSigs := fs.Bool("no-signatures", false, "do not check signatures (UNSAFE: anyone who can write the file can rewrite it)")
	headFile := fs.String("head-file", "", "the node's saved tree head (default <log>.head; checked when present)")
	trustedSize := fs.Uint64("trusted-size", 0, "size of a tree head kept elsewhere")
	trustedRoot := fs.String("trusted-root", "", "hex root of that tree head")
	var witnessed multiFlag
	fs.Var(&witnessed, "witnessed", "verify: a node's URL whose GET /v1/audit/heads lists the heads witnesses hold; repeatable")
	tokenFile := fs.String("token-file", "", "verify --witnessed: file holding an auditor API token (default $SIGNPOST_TOKEN)")
	oldSize := fs.Uint64("old-size", 0, "prove: the size of the witness's tree head")
	index := fs.Int64("index", -1, "prove: also prove inclusion of the event at this index")
	var refs, lookupKeys multiFlag
	fs.Var(&refs, "ref", "subject ref (32 hex digits); repeatable")
	fs.Var(&lookupKeys, "lookup-key", "lookup key (hex); repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "signpost audit %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	if *logPath == "" {
		*logPath = filepath.Join(*data, audit.FileName)
	}
	if *keyPath == "" {
		*keyPath = *logPath + ".key"
	}
	if *pubFile == "" {
		*pubFile = *logPath + ".pub"
	}
	if *headFile == "" {
		*headFile = *logPath + ".head"
	}
	if sub == "pubkey" {
		pub, err := audit.ReadPublicKey(*pubFile)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit pubkey: %v (the node writes it at start)\n", err)
			return 1
		}
		fmt.Fprintln(stdout, audit.FormatPublicKey(pub))
		return 0
	}
	opts := audit.VerifyOptions{}
	switch {
	case *noSigs && (*pubHex != "" || len(witnessed) > 0):
		fmt.Fprintf(stderr, "signpost audit %s: --no-signatures goes with neither --pubkey nor --witnessed\n", sub)
		return 2
	case *noSigs:
		fmt.Fprintf(stderr, "signpost audit %s: WARNING: signatures NOT checked (--no-signatures): anyone who can write %s can rewrite it undetected\n", sub, *logPath)
	case *pubHex != "":
		pub, err := audit.ParsePublicKey(*pubHex)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit %s: --pubkey must be %d bytes of hex\n", sub, ed25519.PublicKeySize)
			return 2
		}
		opts.PublicKey = pub
	default:
		pub, err := audit.ReadPublicKey(*pubFile)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit %s: no public key to check signatures with: %v\n"+
				"give --pubkey (see 'signpost audit pubkey' on the node), or --no-signatures to skip them (unsafe)\n", sub, err)
			return 1
		}
		opts.PublicKey = pub
	}
	saved, err := audit.ReadHeadFile(*headFile, opts.PublicKey)
	if err != nil {
		fmt.Fprintf(stderr, "signpost audit %s: %v\n", sub, err)
		return 1
	}
	if saved != nil {
		opts.Heads = append(opts.Heads, *saved)
	}
	if *trustedSize > 0 || *trustedRoot != "" {
		var root audit.Hash
		if err := root.UnmarshalText([]byte(*trustedRoot)); err != nil || *trustedSize == 0 {
			fmt.Fprintf(stderr, "signpost audit %s: --trusted-size and --trusted-root go together (root: 64 hex digits)\n", sub)
			return 2
		}
		opts.Trusted = &audit.TreeHead{Size: *trustedSize, Root: root}
	}
	var witnesses []string
	if len(witnessed) > 0 {
		if sub != "verify" {
			fmt.Fprintf(stderr, "signpost audit %s: --witnessed is for verify\n", sub)
			return 2
		}
		token, err := readToken(*tokenFile, "--witnessed (an auditor API token)")
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit verify: %v\n", err)
			return 2
		}
		for _, u := range witnessed {
			heads, names, err := fetchWitnessed(ctx, u, token, opts.PublicKey)
			if err != nil {
				fmt.Fprintf(stderr, "signpost audit verify: --witnessed %s: %v\n", u, err)
				return 1
			}
			opts.Heads = append(opts.Heads, heads...)
			witnesses = append(witnesses, names...)
		}
		if len(witnesses) == 0 {
			fmt.Fprintln(stderr, "signpost audit verify: no witness holds a head signed by this log's key: nothing to check it against")
			return 1
		}
	}
	f, err := os.Open(*logPath)
	if err != nil {
		fmt.Fprintf(stderr, "signpost audit %s: %v\n", sub, err)
		return 1
	}
	defer f.Close()

	switch sub {
	case "verify", "head":
		head, err := audit.VerifyWith(f, opts)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit %s: %s: %v\n", sub, *logPath, err)
			return 1
		}
		if sub == "verify" {
			fmt.Fprintf(stdout, "ok: %d events, root %s\n", head.Size, head.Root)
			if opts.PublicKey != nil {
				fmt.Fprintf(stdout, "signatures: every line signed by %s\n", audit.FormatPublicKey(opts.PublicKey))
			}
			if saved != nil {
				fmt.Fprintf(stdout, "saved head: size %d matches\n", saved.Size)
			}
			for _, w := range witnesses {
				fmt.Fprintf(stdout, "witnessed: %s\n", w)
			}
			return 0
		}
		b, _ := json.Marshal(head)
		fmt.Fprintln(stdout, string(b))
		return 0
	case "prove":
		return prove(f, opts, *oldSize, *index, stdout, stderr, *logPath)
	case "subject":
		want := make([]audit.SubjectRef, 0, len(refs)+len(lookupKeys))
		for _, s := range refs {
			r, err := audit.ParseSubjectRef(s)
			if err != nil {
				fmt.Fprintf(stderr, "signpost audit subject: --ref: %v\n", err)
				return 2
			}
			want = append(want, r)
		}
		if len(lookupKeys) > 0 {
			key, err := os.ReadFile(*keyPath)
			if err != nil || len(key) != 32 {
				fmt.Fprintf(stderr, "signpost audit subject: the audit key %s is missing or not 32 bytes\n", *keyPath)
				return 1
			}
			for _, s := range lookupKeys {
				lk, err := hex.DecodeString(s)
				if err != nil || len(lk) == 0 {
					fmt.Fprintln(stderr, "signpost audit subject: --lookup-key must be hex")
					return 2
				}
				want = append(want, audit.RefFor(key, lk))
			}
		}
		if len(want) == 0 {
			fmt.Fprintln(stderr, "signpost audit subject: give at least one --ref or --lookup-key")
			return 2
		}
		entries, err := audit.Query(f, opts.PublicKey, want...)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit subject: %s: %v\n", *logPath, err)
			return 1
		}
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				fmt.Fprintf(stderr, "signpost audit subject: %v\n", err)
				return 1
			}
		}
		fmt.Fprintf(stderr, "%d events\n", len(entries))
		return 0
	}
	return 2 // unreachable: sub was checked above
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*m = append(*m, s)
	return nil
}

// proof is the output of `signpost audit prove`.
type proof struct {
	Head        audit.TreeHead `json:"head"`
	OldSize     uint64         `json:"oldSize"`
	OldRoot     audit.Hash     `json:"oldRoot"`
	Consistency []audit.Hash   `json:"consistency"`
	Index       *uint64        `json:"index,omitempty"`
	Leaf        *audit.Hash    `json:"leaf,omitempty"`
	Inclusion   []audit.Hash   `json:"inclusion,omitempty"`
}

func prove(r io.Reader, opts audit.VerifyOptions, oldSize uint64, index int64, stdout, stderr io.Writer, name string) int {
	if oldSize == 0 {
		fmt.Fprintln(stderr, "signpost audit prove: --old-size is required (the size of the tree head to prove from)")
		return 2
	}
	leaves, head, err := audit.ReadLeaves(r, opts)
	if err != nil {
		fmt.Fprintf(stderr, "signpost audit prove: %s: %v\n", name, err)
		return 1
	}
	cons, err := audit.ConsistencyProof(leaves, oldSize)
	if err != nil {
		fmt.Fprintf(stderr, "signpost audit prove: %v\n", err)
		return 1
	}
	out := proof{Head: head, OldSize: oldSize, OldRoot: audit.RootHash(leaves[:oldSize]), Consistency: cons}
	if out.Consistency == nil {
		out.Consistency = []audit.Hash{}
	}
	if index >= 0 {
		i := uint64(index)
		inc, err := audit.InclusionProof(leaves, i)
		if err != nil {
			fmt.Fprintf(stderr, "signpost audit prove: %v\n", err)
			return 1
		}
		out.Index, out.Leaf, out.Inclusion = &i, &leaves[i], inc
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return 0
}

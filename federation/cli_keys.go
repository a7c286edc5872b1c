package federation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/signpost-federation/signpost/federation/dkg"
)

// SignKeyRecordInDir signs the public result ks of a DKG or reshare with
// the directory's authority as a key record, with the next serial of the
// directory's counter (shared with descriptors, so a later record always
// has a higher serial and replaces an earlier one of the same purpose and
// epoch).
func SignKeyRecordInDir(dir string, ks *dkg.KeySet, notBefore, retireAt time.Time) (*KeyRecord, error) {
	a, err := LoadAuthority(dir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, serialFile))
	if err != nil {
		return nil, fmt.Errorf("federation: read serial: %w", err)
	}
	last, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("federation: parse serial file: %w", err)
	}
	r := KeyRecordFromKeySet(ks)
	r.Serial, r.NotBefore, r.RetireAt = last+1, notBefore, retireAt
	kr, err := a.SignKeyRecord(r)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, serialFile), []byte(strconv.FormatUint(r.Serial, 10)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return kr, nil
}

// parseWithFile parses fs with exactly one positional argument (a file),
// which may come before or after the flags.
func parseWithFile(fs *flag.FlagSet, args []string, stderr io.Writer) (string, int, bool) {
	fs.SetOutput(stderr)
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return "", 0, false
		}
		return "", 2, false
	}
	rest := fs.Args()
	if file == "" && len(rest) > 0 {
		file, rest = rest[0], rest[1:]
	}
	if file == "" || len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: want exactly one file argument\n", fs.Name())
		return "", 2, false
	}
	return file, 0, true
}

func cliSignKey(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation sign-key", flag.ContinueOnError)
	dir := fs.String("dir", "", "authority directory (required)")
	out := fs.String("out", "keyrecord.pem", "signed key record file to write")
	notBefore := fs.String("not-before", "", "when nodes start using the key (RFC 3339; default now)")
	retireAt := fs.String("retire-at", "", "when the key's use ends (RFC 3339; default none)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: signpost federation sign-key -dir AUTHORITY_DIR [flags] RESULT_FILE")
		fs.PrintDefaults()
	}
	file, code, ok := parseWithFile(fs, args, stderr)
	if !ok {
		return code
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "sign-key: -dir is required")
		return 2
	}
	nb, ra := time.Now(), time.Time{}
	var err error
	if *notBefore != "" {
		if nb, err = time.Parse(time.RFC3339, *notBefore); err != nil {
			fmt.Fprintln(stderr, "sign-key: -not-before:", err)
			return 2
		}
	}
	if *retireAt != "" {
		if ra, err = time.Parse(time.RFC3339, *retireAt); err != nil {
			fmt.Fprintln(stderr, "sign-key: -retire-at:", err)
			return 2
		}
	}
	ks, err := LoadDKGResult(file)
	if err != nil {
		return fail(stderr, err)
	}
	kr, err := SignKeyRecordInDir(*dir, ks, nb, ra)
	if err != nil {
		return fail(stderr, err)
	}
	if err := WriteKeyRecords(*out, []*KeyRecord{kr}); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "signed %s; written to %s: give it to any node (key_records of its run config, or Agent.SetKeyRecord) and it spreads\n", kr, *out)
	return 0
}

func cliKeys(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("signpost federation keys", flag.ContinueOnError)
	authority := fs.String("authority", "", "authority public key file (authority.pub): check every signature")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: signpost federation keys [-authority authority.pub] FILE")
		fs.PrintDefaults()
	}
	file, code, ok := parseWithFile(fs, args, stderr)
	if !ok {
		return code
	}
	var rs []*KeyRecord
	if *authority != "" {
		pub, err := LoadAuthorityPublicKey(*authority)
		if err != nil {
			return fail(stderr, err)
		}
		if rs, err = LoadKeyRecords(file, pub); err != nil {
			return fail(stderr, err)
		}
	} else {
		blocks, err := readPEM(file)
		if err != nil {
			return fail(stderr, err)
		}
		for i, b := range blocks {
			if b.Type != pemKeyRecord {
				return fail(stderr, fmt.Errorf("%s: block %d is %q, not a key record", file, i, b.Type))
			}
			r, err := DecodeSignedKeyRecord(b.Bytes)
			if err != nil {
				return fail(stderr, fmt.Errorf("%s: block %d: %w", file, i, err))
			}
			if err := r.check(); err != nil {
				return fail(stderr, fmt.Errorf("%s: block %d: %w", file, i, err))
			}
			rs = append(rs, r)
		}
	}
	for _, r := range rs {
		printKeyRecord(stdout, r)
	}
	if *authority == "" {
		fmt.Fprintln(stdout, "signatures not checked (give -authority authority.pub to check them)")
	} else {
		fmt.Fprintf(stdout, "%d record(s), every signature checked\n", len(rs))
	}
	return 0
}

// printKeyRecord prints what an operator checks: purpose, epoch, t of n,
// the issuers, the times, and short fingerprints of the public keys. There
// is no secret in a record to print.
func printKeyRecord(w io.Writer, r *KeyRecord) {
	fmt.Fprintf(w, "%s epoch %d: t = %d of n = %d, serial %d\n", r.Purpose, r.Epoch, r.T, r.N(), r.Serial)
	fmt.Fprintf(w, "  group key   %s\n", fingerprint(r.GroupKey))
	fmt.Fprintf(w, "  session     %s\n", r.Session)
	fmt.Fprintf(w, "  not before  %s\n", r.NotBefore.Format(time.RFC3339))
	if !r.RetireAt.IsZero() {
		fmt.Fprintf(w, "  retire at   %s\n", r.RetireAt.Format(time.RFC3339))
	}
	for _, is := range r.Issuers {
		fmt.Fprintf(w, "  issuer %-3d  %s (public share %s)\n", is.Index, is.NodeID, fingerprint(is.PublicShare))
	}
}

// fingerprint is the first 8 bytes of SHA-256 of a public key, in hex.
func fingerprint(pub []byte) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// KeysMain is the operator's side of the federation's token keys, run as
// `signpost federation dkg …` and `signpost federation key-records …`
// against a running node's API with an operator's API token
// ($SIGNPOST_TOKEN or --token-file, never a flag):
//
//	dkg start   --node URL --purpose P --epoch E --t T --issuers A,B,C
//	dkg status  --node URL
//	dkg result  --node URL [--out FILE] SESSION
//	dkg reshare --node URL --purpose P --epoch E --t T --issuers A,B,C
//	dkg approve --node URL SESSION
//	dkg erase-old --node URL --purpose P --epoch E
//	key-records add  --node URL FILE
//	key-records list --node URL
//
// A DKG runs among the named issuers (this node among them); its public
// result is what the authority signs offline (`signpost federation
// sign-key`), and the signed record, given to any node, spreads to all.
func KeysMain(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		keysUsage(stderr)
		return 2
	}
	sub := args[0] + " " + args[1]
	fs := flag.NewFlagSet("signpost federation "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	node := fs.String("node", "", "the node's API address, e.g. https://node.example:8080 (required)")
	tokenFile := fs.String("token-file", "", "file holding an operator API token (default $SIGNPOST_TOKEN)")
	var purpose, issuers, out *string
	var epoch, t *int
	switch sub {
	case "dkg start", "dkg reshare":
		purpose = fs.String("purpose", "", "the key's purpose (required)")
		epoch = fs.Int("epoch", 0, "the key's epoch, above 0 (required)")
		t = fs.Int("t", 0, "threshold: how many issuers make a token together (required)")
		issuers = fs.String("issuers", "", "comma-separated issuer node ids, this node among them; Shamir indices 1..n in this order (required)")
	case "dkg result":
		out = fs.String("out", "", "write the result file here (default: standard output)")
	case "dkg erase-old":
		purpose = fs.String("purpose", "", "the key's purpose (required)")
		epoch = fs.Int("epoch", 0, "the key's epoch (required)")
	case "dkg status", "dkg approve", "key-records add", "key-records list":
	default:
		keysUsage(stderr)
		return 2
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	wantArgs := map[string]int{"dkg result": 1, "dkg approve": 1, "key-records add": 1}[sub]
	if *node == "" || fs.NArg() != wantArgs {
		fmt.Fprintf(stderr, "signpost federation %s: --node is required", sub)
		if wantArgs > 0 {
			fmt.Fprint(stderr, ", with one argument")
		}
		fmt.Fprintln(stderr)
		fs.Usage()
		return 2
	}
	token, err := readToken(*tokenFile, "signpost federation "+sub+" (an operator's token)")
	if err != nil {
		fmt.Fprintln(stderr, "signpost federation:", err)
		return 1
	}
	c := nodeClient{base: strings.TrimRight(*node, "/"), token: token}
	switch sub {
	case "dkg start", "dkg reshare":
		var ids []string
		for _, s := range strings.Split(*issuers, ",") {
			if s = strings.TrimSpace(s); s != "" {
				ids = append(ids, s)
			}
		}
		if *purpose == "" || *epoch <= 0 || *t <= 0 || len(ids) == 0 {
			fmt.Fprintf(stderr, "signpost federation %s: --purpose, --epoch, --t and --issuers are required\n", sub)
			return 2
		}
		path, what := "/v1/federation/dkg", "DKG"
		if sub == "dkg reshare" {
			path, what = "/v1/federation/reshare", "Reshare"
		}
		var ans struct{ Session string }
		err = c.call(ctx, http.MethodPost, path, map[string]any{"purpose": *purpose, "epoch": *epoch, "t": *t, "issuers": ids}, &ans)
		if err == nil {
			fmt.Fprintf(stdout, "%s started: session %s (%s, epoch %d, %d of %d: %s)\n", what, ans.Session, *purpose, *epoch, *t, len(ids), strings.Join(ids, ", "))
			if sub == "dkg reshare" {
				fmt.Fprintf(stdout, "The key's other holders deal once their operators approve:  signpost federation dkg approve --node THEIR_NODE %s\n", ans.Session)
			}
			fmt.Fprintf(stdout, "Follow it:   signpost federation dkg status --node %s\nThen fetch:  signpost federation dkg result --node %s --out result.pem %s\n", c.base, c.base, ans.Session)
		}
	case "dkg approve":
		if err = c.call(ctx, http.MethodPost, "/v1/federation/dkg/"+fs.Arg(0)+"/approve", nil, nil); err == nil {
			fmt.Fprintf(stdout, "approved: this node deals its share in reshare %s\n", fs.Arg(0))
		}
	case "dkg erase-old":
		if *purpose == "" || *epoch <= 0 {
			fmt.Fprintln(stderr, "signpost federation dkg erase-old: --purpose and --epoch are required")
			return 2
		}
		var ans struct{ Erased int }
		if err = c.call(ctx, http.MethodPost, "/v1/federation/erase-old-shares", map[string]any{"purpose": *purpose, "epoch": *epoch}, &ans); err == nil {
			fmt.Fprintf(stdout, "%d old share file(s) erased\n", ans.Erased)
		}
	case "dkg status":
		var ans struct{ Sessions []dkgSession }
		if err = c.call(ctx, http.MethodGet, "/v1/federation/dkg", nil, &ans); err == nil {
			printSessions(stdout, ans.Sessions)
		}
	case "dkg result":
		var ans struct{ Result string }
		if err = c.call(ctx, http.MethodGet, "/v1/federation/dkg/"+fs.Arg(0)+"/result", nil, &ans); err == nil {
			if *out == "" {
				_, err = io.WriteString(stdout, ans.Result)
			} else if err = os.WriteFile(*out, []byte(ans.Result), 0o644); err == nil {
				fmt.Fprintf(stdout, "wrote %s; the authority signs it with: signpost federation sign-key -dir AUTHORITY_DIR %s\n", *out, *out)
			}
		}
	case "key-records add":
		var data []byte
		if data, err = os.ReadFile(fs.Arg(0)); err == nil {
			var ans struct{ Adopted int }
			if err = c.call(ctx, http.MethodPost, "/v1/federation/key-records", map[string]string{"records": string(data)}, &ans); err == nil {
				fmt.Fprintf(stdout, "%d key record(s) adopted; they spread to every member\n", ans.Adopted)
			}
		}
	case "key-records list":
		var ans federationAnswer
		if err = c.call(ctx, http.MethodGet, "/v1/federation", nil, &ans); err == nil {
			printFederation(stdout, ans)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "signpost federation "+sub+":", err)
		return 1
	}
	return 0
}

func keysUsage(w io.Writer) {
	fmt.Fprint(w, `usage (against a running node, operator token in $SIGNPOST_TOKEN or --token-file):
  signpost federation dkg start   --node URL --purpose P --epoch E --t T --issuers A,B,C
  signpost federation dkg status  --node URL
  signpost federation dkg result  --node URL [--out FILE] SESSION
  signpost federation dkg reshare --node URL --purpose P --epoch E --t T --issuers A,B,C
  signpost federation dkg approve --node URL SESSION     (at each other holder of the key)
  signpost federation dkg erase-old --node URL --purpose P --epoch E   (once the new record is in force)
  signpost federation key-records add  --node URL FILE
  signpost federation key-records list --node URL
`)
}

// dkgSession is one entry of GET /v1/federation/dkg (federation.DKGStatus).
type dkgSession struct {
	Session                 string
	Purpose                 string
	Epoch                   uint32
	T, N                    int
	Reshare                 bool
	Phase                   string
	Deadline                time.Time
	Answered, Waiting       []string
	Excluded                []struct{ NodeID, Reason string }
	Holders, Unconfirmed    []string
	Reason, Err, ResultPath string
}

func printSessions(w io.Writer, ss []dkgSession) {
	if len(ss) == 0 {
		fmt.Fprintln(w, "no DKG sessions at this node")
		return
	}
	for _, s := range ss {
		kind := "DKG"
		if s.Reshare {
			kind = "reshare"
		}
		fmt.Fprintf(w, "%s %s  %s epoch %d, %d of %d: %s\n", kind, s.Session, s.Purpose, s.Epoch, s.T, s.N, s.Phase)
		if len(s.Answered) > 0 || len(s.Waiting) > 0 {
			fmt.Fprintf(w, "  answered: %s; waiting for: %s\n", orNone(s.Answered), orNone(s.Waiting))
		}
		for _, x := range s.Excluded {
			fmt.Fprintf(w, "  excluded %s: %s\n", x.NodeID, x.Reason)
		}
		if len(s.Holders) > 0 {
			fmt.Fprintf(w, "  holders: %s\n", strings.Join(s.Holders, ", "))
		}
		if s.Reason != "" {
			fmt.Fprintf(w, "  aborted: %s\n", s.Reason)
		}
		if s.Err != "" {
			fmt.Fprintf(w, "  error: %s\n", s.Err)
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// federationAnswer is the part of GET /v1/federation the command prints.
type federationAnswer struct {
	Self string
	Keys []struct {
		Purpose string
		Epoch   uint32
		T, N    int
		Share   bool
		Issuers []struct {
			NodeID string
			Index  int
		}
	}
	Issuers []struct {
		NodeID, Agency, State, LastError string
		LastOK                           *time.Time
	}
	Rotating bool
	Rotation []struct {
		Purpose string
		Epoch   uint32
		Action  string
		Pending int
	}
}

func printFederation(w io.Writer, f federationAnswer) {
	if len(f.Keys) == 0 {
		fmt.Fprintf(w, "%s knows no token key yet: run a DKG, have the authority sign its result, and add the record\n", f.Self)
	}
	for _, k := range f.Keys {
		var ids []string
		for _, is := range k.Issuers {
			ids = append(ids, fmt.Sprintf("%d:%s", is.Index, is.NodeID))
		}
		mine := ""
		if k.Share {
			mine = " (this node holds a share)"
		}
		fmt.Fprintf(w, "%s epoch %d: %d of %d — %s%s\n", k.Purpose, k.Epoch, k.T, k.N, strings.Join(ids, ", "), mine)
	}
	if f.Rotating {
		fmt.Fprintf(w, "a key rotation is under way at %s:\n", f.Self)
		for _, r := range f.Rotation {
			verb := "to publish under"
			if r.Action == "withdraw" {
				verb = "to withdraw from the retired"
			}
			fmt.Fprintf(w, "  %s: %d record(s) %s epoch %d\n", r.Purpose, r.Pending, verb, r.Epoch)
		}
	}
	for _, is := range f.Issuers {
		line := fmt.Sprintf("issuer %s (%s): %s", is.NodeID, is.Agency, is.State)
		if is.LastOK != nil {
			line += ", last valid answer " + is.LastOK.Format(time.RFC3339)
		}
		if is.LastError != "" {
			line += ", last error: " + is.LastError
		}
		fmt.Fprintln(w, line)
	}
}

// nodeClient calls a node's JSON API with a bearer token.
type nodeClient struct{ base, token string }

// maxAnswer bounds an answer read from a node.
const maxAnswer = 4 << 20

func (c nodeClient) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return err
	}
	if len(b) > maxAnswer {
		return errors.New("the node's answer is too large")
	}
	if res.StatusCode == http.StatusNoContent || out == nil {
		if res.StatusCode/100 == 2 {
			return nil
		}
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("the node answered %s %s: %s", res.Status, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("the node answered %s", res.Status)
	}
	return json.Unmarshal(b, out)
}

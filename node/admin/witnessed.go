package admin

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/signpost-federation/signpost/node/internal/audit"
)

// readToken reads an API token from a file, or from $SIGNPOST_TOKEN: never
// from a flag, whose value any user of the machine can read in ps. need
// says what the token is for, in the error when there is none.
func readToken(file, need string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("--token-file %s is empty", file)
	}
	if t := strings.TrimSpace(os.Getenv("SIGNPOST_TOKEN")); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("%s needs an API token in $SIGNPOST_TOKEN or a --token-file", need)
}

// headsAnswer is GET /v1/audit/heads (see openapi.json, AuditHeads).
type headsAnswer struct {
	Self      string           `json:"self"`
	Heads     []audit.NodeHead `json:"heads"`
	Witnessed []struct {
		Witness string `json:"witness"`
		audit.NodeHead
	} `json:"witnessed"`
	Unreachable []string `json:"unreachable"`
}

// maxHeadsAnswer bounds the answer read from a node.
const maxHeadsAnswer = 4 << 20

// fetchWitnessed asks the node at base for the heads it holds and those the
// other members hold for it, and returns those signed by pub — the heads
// witnesses hold for the log being verified, whichever node's URL was given
// — with a line describing each. Evidence of a fork held for this log is an
// error: the node signed two heads that no single log has.
func fetchWitnessed(ctx context.Context, base, token string, pub ed25519.PublicKey) ([]audit.TreeHead, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/audit/heads", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxHeadsAnswer+1))
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.Unmarshal(body, &e)
		return nil, nil, fmt.Errorf("the node answered %s %s", res.Status, e.Error.Code)
	}
	if len(body) > maxHeadsAnswer {
		return nil, nil, errors.New("answer too large")
	}
	var ans headsAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, nil, fmt.Errorf("not an audit heads answer: %w", err)
	}
	type held struct {
		witness string
		audit.NodeHead
	}
	all := make([]held, 0, len(ans.Heads)+len(ans.Witnessed))
	for _, h := range ans.Heads {
		all = append(all, held{ans.Self, h})
	}
	for _, h := range ans.Witnessed {
		all = append(all, held{h.Witness, h.NodeHead})
	}
	var heads []audit.TreeHead
	var names []string
	for _, h := range all {
		if h.VerifySignature(pub) != nil {
			continue // another node's head, or not this key's
		}
		if len(h.Forks) > 0 {
			f := h.Forks[0]
			return nil, nil, fmt.Errorf("%w: witness %s holds evidence of a fork of this log: it holds size %d root %s, and was offered size %d root %s (%s)",
				audit.ErrTampered, h.witness, f.Held.Size, f.Held.Root, f.Offered.Size, f.Offered.Root, f.Reason)
		}
		heads = append(heads, h.TreeHead)
		names = append(names, fmt.Sprintf("%s holds size %d, seen %s", h.witness, h.Size, h.Time.Format("2006-01-02T15:04:05Z")))
	}
	return heads, names, nil
}

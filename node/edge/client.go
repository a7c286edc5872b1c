package edge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signpost-federation/signpost/node/internal/httpx"
	"github.com/signpost-federation/signpost/node/internal/records"
	"github.com/signpost-federation/signpost/wasm"
)

// scheme is the identifier scheme the client locates: NHS numbers, as
// POST /v1/locate does.
const scheme = "nhs"

// Status is the outcome of one input line.
type Status string

// The outcomes of a line.
const (
	StatusFound   Status = "found"   // other agencies hold a record (Line.Holders)
	StatusNone    Status = "none"    // no other agency holds one
	StatusInvalid Status = "invalid" // not a valid number: Code and Reason are the module's
	StatusFailed  Status = "failed"  // it could not be located: Code and Reason say why
)

// Holder is one agency in an answer: the same fields, in the same JSON, as
// a holder of POST /v1/locate.
type Holder struct {
	NodeID   string    `json:"nodeId"`
	Agency   string    `json:"agency"`
	Category string    `json:"category"`
	Since    time.Time `json:"since"`
	// Shielded holders are not named (NodeID and Category empty, Agency
	// httpx.ShieldedService): ask through Broker, as POST /v1/locate says.
	Shielded     bool   `json:"shielded,omitempty"`
	Broker       string `json:"broker,omitempty"`
	BrokerAgency string `json:"brokerAgency,omitempty"`
}

// Line is the answer for one input line.
type Line struct {
	Status  Status   `json:"status"`
	Holders []Holder `json:"holders,omitempty"`
	// SelfHolds says the asking node holds a record too (it is never in
	// Holders), as in POST /v1/locate.
	SelfHolds bool `json:"selfHolds,omitempty"`
	// Code and Reason are set for invalid and failed lines. An invalid
	// line's reason is the module's, which never names a correct digit.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Config configures a [Client]. The zero values of the optional fields
// take the defaults named on each.
type Config struct {
	// Node is the node's base URL (http or https). Required.
	Node string
	// Purpose is the purpose every lookup is made for. Required.
	Purpose string
	// Token is the API token sent as a bearer token. Required; never logged.
	Token string
	// Batch is how many blinded elements one evaluate call carries: at
	// most the node's max_batch. Default 256 (the node's default).
	Batch int
	// Lookups is how many lookups run at once. Default 8.
	Lookups int
	// Retries is how many times a 503 issuers_unavailable (or another 5xx,
	// or a transport error) is retried, with back-off from 1 s doubling,
	// before the lines are reported as failed. Default 3; -1: none.
	Retries int
	// HTTP is the client. Default: one with a 60 s timeout that keeps a
	// connection for each lookup in flight.
	HTTP *http.Client
	// Sleep waits d or until ctx is done (tests inject a clock). Default:
	// a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client locates numbers through one node. Safe for concurrent use.
type Client struct {
	cfg Config
	rt  *wasm.Runtime
	// base is cfg.Node without a trailing slash.
	base string
}

// ErrConfig is returned by [New] for a configuration it cannot use.
var ErrConfig = errors.New("edge: invalid configuration")

// New returns a client running the module in rt (which the caller
// closes). It clones cfg, fills the defaults and checks it.
func New(rt *wasm.Runtime, cfg Config) (*Client, error) {
	c := cfg
	if c.Batch == 0 {
		c.Batch = 256
	}
	if c.Lookups == 0 {
		c.Lookups = 8
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.HTTP == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2 * c.Lookups // the lookups and evaluations in flight keep their connections
		c.HTTP = &http.Client{Timeout: 60 * time.Second, Transport: tr}
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	var errs []string
	if !strings.HasPrefix(c.Node, "http://") && !strings.HasPrefix(c.Node, "https://") {
		errs = append(errs, "the node URL must start with http:// or https://")
	}
	if c.Purpose == "" {
		errs = append(errs, "a purpose is required")
	}
	if c.Token == "" {
		errs = append(errs, "an API token is required")
	}
	if c.Batch < 1 || c.Batch > 4096 {
		errs = append(errs, "the batch must be 1 to 4096")
	}
	if c.Lookups < 1 || c.Lookups > 256 {
		errs = append(errs, "concurrent lookups must be 1 to 256")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return &Client{cfg: c, rt: rt, base: strings.TrimRight(c.Node, "/")}, nil
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.cfg.HTTP.CloseIdleConnections() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Locate answers lines (one input each), in order. Each batch of
// Config.Batch valid numbers is one evaluate call; a failure fails only
// the lines it concerns. The error is for cancellation only (the lines
// are then incomplete) or a broken module.
func (c *Client) Locate(ctx context.Context, lines []string) ([]Line, error) {
	out := make([]Line, len(lines))
	res, err := c.rt.ValidateBatch(ctx, scheme, lines)
	if err != nil {
		return nil, fmt.Errorf("edge: validate: %w", err)
	}
	var canon []string
	var at []int // out index of each canonical number
	for i, r := range res {
		if !r.Valid {
			out[i] = Line{Status: StatusInvalid, Code: r.Code, Reason: r.Reason}
			continue
		}
		canon = append(canon, r.Normalized)
		at = append(at, i)
	}
	for start := 0; start < len(canon); start += c.cfg.Batch {
		end := min(start+c.cfg.Batch, len(canon))
		ls, err := c.locateValid(ctx, canon[start:end])
		if err != nil {
			return nil, err
		}
		for j, l := range ls {
			out[at[start+j]] = l
		}
	}
	return out, nil
}

// locateValid locates canonical numbers (at most one batch): one
// evaluate per key in force, then one lookup per number and key.
func (c *Client) locateValid(ctx context.Context, numbers []string) ([]Line, error) {
	out := make([]Line, len(numbers))
	sets, err := c.tokens(ctx, numbers)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, errModule) {
			return nil, err
		}
		l := failedLine(err)
		for i := range out {
			out[i] = l
		}
		return out, nil
	}
	var wg sync.WaitGroup
	next := make(chan int)
	errc := make(chan error, c.cfg.Lookups)
	for range min(c.cfg.Lookups, len(numbers)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				toks := make([]wasm.Token, len(sets))
				for e, set := range sets {
					toks[e] = set[i]
				}
				l, err := c.lookup(ctx, toks)
				if err != nil { // a broken module or cancellation
					errc <- err
					return
				}
				out[i] = l
			}
		}()
	}
	var ferr error
send:
	for i := range numbers {
		select {
		case next <- i:
		case ferr = <-errc:
			break send
		}
	}
	close(next)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errc:
		default:
		}
	}
	return out, ferr
}

// tokens makes the numbers' tokens under every key in force for the
// purpose, newest first: the current key's evaluation names the epochs in
// force, and during a rotation's overlap the numbers are blinded again and
// evaluated under each other one (naming its epoch), as the page does. If
// any key cannot be used the whole batch fails, as POST /v1/locate does:
// an answer from one epoch only could hide a holder. Errors from the node
// or its answers are *apiError or transport errors; the module's wrap
// errModule.
func (c *Client) tokens(ctx context.Context, numbers []string) ([][]wasm.Token, error) {
	first, ev, err := c.tokensUnder(ctx, numbers, 0)
	if err != nil {
		return nil, err
	}
	sets := [][]wasm.Token{first}
	if len(ev.Epochs) > 8 {
		return nil, &apiError{Code: "bad_answer", Message: "the node's evaluation names more than 8 keys in force"}
	}
	for _, e := range ev.Epochs {
		if e == ev.Epoch {
			continue
		}
		toks, _, err := c.tokensUnder(ctx, numbers, e)
		if err != nil {
			return nil, err
		}
		sets = append(sets, toks)
	}
	return sets, nil
}

// tokensUnder blinds numbers, has them evaluated under epoch's key (0: the
// current one) and combines the partials.
func (c *Client) tokensUnder(ctx context.Context, numbers []string, epoch uint32) ([]wasm.Token, *evaluateResponse, error) {
	b, err := c.rt.BlindThreshold(ctx, scheme, numbers)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("%w: blind: %w", errModule, err)
	}
	req := evaluateRequest{Purpose: c.cfg.Purpose, Epoch: epoch, Blinded: make([]string, len(b.Blinded))}
	for i, e := range b.Blinded {
		req.Blinded[i] = base64.StdEncoding.EncodeToString(e)
	}
	var ev evaluateResponse
	if err := c.post(ctx, "/v1/tokens/evaluate", req, &ev); err != nil {
		return nil, nil, err
	}
	if epoch != 0 && ev.Epoch != epoch {
		return nil, nil, &apiError{Code: "bad_answer", Message: fmt.Sprintf("asked for epoch %d, the node evaluated under %d", epoch, ev.Epoch)}
	}
	ks, partials, err := ev.decode(len(numbers))
	if err != nil {
		return nil, nil, err
	}
	toks, err := c.rt.Combine(ctx, b, ks, partials)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, &apiError{Code: "combine_failed", Message: fmt.Sprintf("the node's partial evaluations did not combine: %v", err)}
	}
	return toks, &ev, nil
}

// lookup looks a number up under its tokens' lookup keys (one per key in
// force, newest first), opens the entries and merges the answers: an
// agency once, as found under the newest key. The error is for a broken
// module or cancellation; anything the node answers is a line.
func (c *Client) lookup(ctx context.Context, toks []wasm.Token) (Line, error) {
	l := Line{Status: StatusNone}
	seen := map[string]bool{}
	for _, tok := range toks {
		hs, self, err := c.lookupOne(ctx, tok)
		if ctx.Err() != nil {
			return Line{}, ctx.Err()
		}
		if errors.Is(err, errModule) {
			return Line{}, err
		}
		if err != nil {
			return failedLine(err), nil
		}
		l.SelfHolds = l.SelfHolds || self
		// As POST /v1/locate: an agency once; a shielded holder under the
		// newest key it is found under, and under an older key only for a
		// broker not seen yet (shielded holders cannot be told apart).
		here := map[string]bool{}
		for _, h := range hs {
			if h.Shielded {
				if !seen["\x00"+h.Broker] || here[h.Broker] {
					here[h.Broker] = true
					l.Holders = append(l.Holders, h)
				}
				continue
			}
			if !seen[h.NodeID] {
				seen[h.NodeID] = true
				l.Holders = append(l.Holders, h)
			}
		}
		for b := range here {
			seen["\x00"+b] = true
		}
	}
	sort.SliceStable(l.Holders, func(i, j int) bool {
		a, b := l.Holders[i], l.Holders[j]
		if a.Shielded != b.Shielded {
			return !a.Shielded
		}
		return a.NodeID+a.Broker < b.NodeID+b.Broker
	})
	if len(l.Holders) > 0 {
		l.Status = StatusFound
	}
	return l, nil
}

// errModule marks a failure of the module itself (not of the node or the
// network): it stops the run, where a node's failure fails lines.
var errModule = errors.New("edge: the wasm module failed")

// lookupOne looks one lookup key up and opens its entries: the other
// holders, and whether the asking node holds one too.
func (c *Client) lookupOne(ctx context.Context, tok wasm.Token) (holders []Holder, self bool, err error) {
	var lr lookupResponse
	req := lookupRequest{LookupKey: base64.RawURLEncoding.EncodeToString(tok.LookupKey[:]), Purpose: c.cfg.Purpose}
	if err := c.post(ctx, "/v1/lookup", req, &lr); err != nil {
		return nil, false, err
	}
	entries := make([][]byte, 0, len(lr.Entries))
	for _, e := range lr.Entries {
		b, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			continue // an entry that does not decode opens to nothing: dropped, as the node drops it
		}
		entries = append(entries, b)
	}
	if len(entries) == 0 {
		return nil, false, nil
	}
	members := make([]wasm.Member, 0, len(lr.Members))
	agency := make(map[string]string, len(lr.Members))
	for _, m := range lr.Members {
		pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
		if err != nil || m.NodeID == "" || len(pub) != 32 || len(m.NodeID) > 128 {
			continue // a member the module could not use verifies nothing
		}
		members = append(members, wasm.Member{NodeID: m.NodeID, PublicKey: pub})
		agency[m.NodeID] = m.Agency
	}
	opened, err := c.rt.OpenEntries(ctx, tok.SealKey, entries, members)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		return nil, false, fmt.Errorf("%w: open entries: %w", errModule, err)
	}
	for i, o := range opened {
		if o.Err != nil || o.Withdrawn {
			continue
		}
		if o.Broker != "" {
			// A shielded home node's own entry names its broker: the
			// lookup answer gives its entry key (bytes 17..49 of the
			// entry), as the page tells it apart.
			if lr.SelfEntryKey != "" && base64.RawURLEncoding.EncodeToString(entries[i][17:49]) == lr.SelfEntryKey {
				self = true
				continue
			}
			name := agency[o.Broker]
			if name == "" {
				name = o.Broker
			}
			holders = append(holders, Holder{Agency: httpx.ShieldedService, Since: o.RegisteredAt, Shielded: true, Broker: o.Broker, BrokerAgency: name})
			continue
		}
		if o.NodeID == lr.Self {
			self = true
			continue
		}
		name := agency[o.NodeID]
		if name == "" {
			name = o.NodeID
		}
		cat := o.Category
		if !records.ValidCategory(cat) {
			cat = "" // as the node passes another agency's category on (shownCategory)
		}
		holders = append(holders, Holder{NodeID: o.NodeID, Agency: name, Category: cat, Since: o.RegisteredAt})
	}
	return holders, self, nil
}

// failedLine is the line for a call that failed with err.
func failedLine(err error) Line {
	var ae *apiError
	if errors.As(err, &ae) {
		return Line{Status: StatusFailed, Code: ae.Code, Reason: ae.Message}
	}
	return Line{Status: StatusFailed, Code: "unreachable", Reason: err.Error()}
}

// apiError is a node's JSON error answer, or a failure of the client's own
// that it reports the same way.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("edge: node answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("edge: %s: %s", e.Code, e.Message)
}

// maxResponse bounds a node's answer (a lookup's entries and members, an
// evaluation of 4096 elements by a few issuers).
const maxResponse = 16 << 20

// post POSTs in as JSON to path and decodes a 200 answer into out. It
// waits out 429 rate_limited (Retry-After, 1 s if absent) as long as the
// node asks, and retries a 5xx or a transport error Config.Retries times
// with back-off; anything else is returned at once as an *apiError.
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("edge: encode %s: %w", path, err)
	}
	backoff := time.Second
	retries := 0
	for {
		err := c.postOnce(ctx, path, body, out)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var ae *apiError
		isAPI := errors.As(err, &ae)
		switch {
		case isAPI && ae.Status == http.StatusTooManyRequests && ae.Code == string(httpx.CodeRateLimited):
			wait := ae.RetryAfter
			if wait <= 0 {
				wait = time.Second
			}
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case isAPI && ae.Status < 500:
			return err
		}
		if retries == c.cfg.Retries {
			return err
		}
		retries++
		if err := c.cfg.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff *= 2
	}
}

func (c *Client) postOnce(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("edge: %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("edge: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("edge: %s: read the answer: %w", path, err)
	}
	if len(data) > maxResponse {
		return &apiError{Status: resp.StatusCode, Code: "too_large", Message: "the node's answer is over " + strconv.Itoa(maxResponse>>20) + " MiB"}
	}
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp.StatusCode, resp.Header.Get("Retry-After"), data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &apiError{Status: resp.StatusCode, Code: "bad_answer", Message: "the node's answer is not the expected JSON"}
	}
	return nil
}

// decodeError turns a non-200 answer into an *apiError: the node's code
// and message if the body is its JSON error, else the status text.
func decodeError(status int, retryAfter string, body []byte) *apiError {
	var eb httpx.ErrorBody
	ae := &apiError{Status: status, RetryAfter: parseRetryAfter(retryAfter)}
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		ae.Code, ae.Message = string(eb.Error.Code), eb.Error.Message
	} else {
		ae.Code, ae.Message = "http_"+strconv.Itoa(status), http.StatusText(status)
	}
	return ae
}

// maxRetryAfter bounds how long one Retry-After makes the client wait.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After header in seconds (the node's form);
// 0 if absent or not a number of seconds.
func parseRetryAfter(s string) time.Duration {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

type evaluateRequest struct {
	Purpose string   `json:"purpose"`
	Epoch   uint32   `json:"epoch,omitempty"` // 0: the current key
	Blinded []string `json:"blinded"`
}

type evaluateResponse struct {
	Purpose  string `json:"purpose"`
	Epoch    uint32 `json:"epoch"`
	T        int    `json:"t"`
	GroupKey string `json:"groupKey"`
	// Epochs are the purpose's keys in force, newest first (more than one
	// during a rotation's overlap).
	Epochs   []uint32 `json:"epochs"`
	Partials []struct {
		Issuer      string   `json:"issuer"`
		Index       uint16   `json:"index"`
		PublicShare string   `json:"publicShare"`
		Evaluated   []string `json:"evaluated"`
		Proof       string   `json:"proof"`
	} `json:"partials"`
}

// decode returns the key set and partials of an evaluation of n
// elements, as the page builds them: each partial's issuer and public
// share make the key set's shares (the module checks them against the
// group key and every proof against its share).
func (ev *evaluateResponse) decode(n int) (wasm.KeySet, []wasm.Partial, error) {
	bad := func(what string) error {
		return &apiError{Code: "bad_answer", Message: "the node's evaluation is malformed: " + what}
	}
	gk, err := base64.StdEncoding.DecodeString(ev.GroupKey)
	if err != nil {
		return wasm.KeySet{}, nil, bad("group key")
	}
	ks := wasm.KeySet{Purpose: ev.Purpose, Epoch: ev.Epoch, T: ev.T, GroupKey: gk}
	if len(ev.Partials) > wasm.MaxIssuers {
		return wasm.KeySet{}, nil, bad("too many partials")
	}
	partials := make([]wasm.Partial, len(ev.Partials))
	for i, p := range ev.Partials {
		key, err := base64.StdEncoding.DecodeString(p.PublicShare)
		if err != nil {
			return wasm.KeySet{}, nil, bad("public share")
		}
		proof, err := base64.StdEncoding.DecodeString(p.Proof)
		if err != nil {
			return wasm.KeySet{}, nil, bad("proof")
		}
		if len(p.Evaluated) != n {
			return wasm.KeySet{}, nil, bad("element count")
		}
		evs := make([][]byte, n)
		for j, e := range p.Evaluated {
			if evs[j], err = base64.StdEncoding.DecodeString(e); err != nil {
				return wasm.KeySet{}, nil, bad("evaluated element")
			}
		}
		ks.Shares = append(ks.Shares, wasm.PublicShare{Index: p.Index, NodeID: p.Issuer, Key: key})
		partials[i] = wasm.Partial{Index: p.Index, Evaluated: evs, Proof: proof}
	}
	return ks, partials, nil
}

type lookupRequest struct {
	LookupKey string `json:"lookupKey"`
	Purpose   string `json:"purpose"`
}

type lookupResponse struct {
	Entries []string `json:"entries"`
	Members []struct {
		NodeID    string `json:"nodeId"`
		Agency    string `json:"agency"`
		PublicKey string `json:"publicKey"`
	} `json:"members"`
	Self string `json:"self"`
	// SelfEntryKey is a shielded home node's own entry key (base64url).
	SelfEntryKey string `json:"selfEntryKey"`
}

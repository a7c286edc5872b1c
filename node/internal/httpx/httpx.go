package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// Code is a stable, machine-readable error code. Clients branch on it; the
// message may change. Every code the node can send is one of the constants
// below, and each is listed in the node's openapi.json (a test in node
// checks both ways).
type Code string

// Codes of the error envelope.
const (
	CodeBadRequest          Code = "bad_request"            // 400: malformed or invalid input
	CodeUnauthenticated     Code = "unauthenticated"        // 401: no credentials, or they are wrong
	CodeSessionExpired      Code = "session_expired"        // 401: the session cookie expired
	CodeTokenExpired        Code = "token_expired"          // 401: the API token is past its expiry
	CodeForbidden           Code = "forbidden"              // 403: authenticated, but the role may not do this
	CodeCSRFMissing         Code = "csrf_missing"           // 403: cookie session without X-CSRF-Token
	CodeCSRFInvalid         Code = "csrf_invalid"           // 403: X-CSRF-Token does not match the session
	CodeOriginForbidden     Code = "origin_forbidden"       // 403: Origin header not on the allow-list
	CodeNotFound            Code = "not_found"              // 404
	CodeMethod              Code = "method_not_allowed"     // 405
	CodeTooLarge            Code = "too_large"              // 413: body over the decoder's limit
	CodeURITooLong          Code = "uri_too_long"           // 414: the request target is over the limit
	CodeHeadersTooLarge     Code = "headers_too_large"      // 431: the request's headers are over the limit
	CodeUnsupportedType     Code = "unsupported_media_type" // 415: not application/json
	CodeRateLimited         Code = "rate_limited"           // 429: slow down; see Retry-After
	CodeQuotaExceeded       Code = "quota_exceeded"         // 429: the user's daily lookups are spent; the message and Retry-After say when they reset
	CodeInternal            Code = "internal"               // 500: the node failed; details are in its log
	CodeUnavailable         Code = "unavailable"            // 503: e.g. the issuer is unreachable
	CodeNotReady            Code = "not_ready"              // 503: starting or stopping (/readyz)
	CodeIssuersUnavailable  Code = "issuers_unavailable"    // 503: fewer than t token issuers answered; the message says how many of how many
	CodeNoTokenKey          Code = "no_token_key"           // 503: the federation has no token key for the purpose yet (no key record)
	CodeKeyAdmin            Code = "key_admin_refused"      // 400: a DKG or key-record request the federation refused; the message says why
	CodeWebSocket           Code = "websocket_required"     // 400: GET /v1/watch without a handshake
	CodeTooManyKeys         Code = "too_many_keys"          // 400: a watch naming more lookup keys than allowed
	CodeTooManyWatches      Code = "too_many_watches"       // 429 (this user) or 503 (this node): too many watches open, or stored (watches_per_user)
	CodeWatchNotFound       Code = "watch_not_found"        // 404: no such stored watch of this user
	CodeInvalidNHSNumber    Code = "invalid_nhs_number"     // 400: the reason says why
	CodeInvalidRecord       Code = "invalid_record"         // 400: a record's fields
	CodeInvalidBatch        Code = "invalid_batch"          // 400: too few or too many blinded elements
	CodeInvalidElement      Code = "invalid_element"        // 400: a blinded element is not one
	CodeInvalidLookupKey    Code = "invalid_lookup_key"     // 400
	CodeInvalidHolder       Code = "invalid_holder"         // 400: a contact request names no other node
	CodeInvalidSubject      Code = "invalid_subject"        // 400: send a lookup key or a number, not both
	CodeMessageTooLong      Code = "message_too_long"       // 400: a contact request's message
	CodeTooLong             Code = "too_long"               // 400: a peer's contact request fields
	CodeUnknownEpoch        Code = "unknown_epoch"          // 400: the issuer does not serve that epoch
	CodeEvaluationFailed    Code = "evaluation_failed"      // 400: the issuer could not evaluate
	CodePurpose             Code = "purpose_not_authorised" // 403: this node or the requester lacks the purpose
	CodeNoRecord            Code = "no_record"              // 404: the holder holds nothing under that key
	CodeUnknownNode         Code = "unknown_node"           // 404: a contact request names no member of the federation
	CodeExists              Code = "exists"                 // 409: another record has this localId
	CodeObjected            Code = "objected"               // 409: the person has objected
	CodeNotIssuer           Code = "not_issuer"             // 421: this node is not the issuer
	CodeNoAuditLog          Code = "no_audit_log"           // 501: no queryable audit log
	CodeHolderRefused       Code = "holder_refused"         // 502: the holder refused this node's credentials
	CodeHolderFailed        Code = "holder_failed"          // 502: the holder failed
	CodeHolderUnreachable   Code = "holder_unreachable"     // 502
	CodeNoFederation        Code = "no_federation"          // 503: single node, no peers
	CodeHolderTimeout       Code = "holder_timeout"         // 504
	CodeUnsupportedProtocol Code = "unsupported_protocol"   // 501 or 505: a transfer encoding or HTTP version the server does not support
)

// Contact request codes (node/contact.go).
const (
	CodeInvalidText     Code = "invalid_text"              // 400: a contact request's message, named contact or reason is not one bounded line of text
	CodeContactNotFound Code = "contact_request_not_found" // 404: no such contact request (received, to decide; sent, for a holder's decision)
	CodeContactDecided  Code = "contact_request_decided"   // 409: the contact request was already answered or declined
	CodeInvalidShield   Code = "invalid_shield"            // 400: a request through a broker lacks a well-formed entryKey and shield
	CodeNotBroker       Code = "not_broker"                // 403: the broker does not relay for that holder, or the shield does not open there
)

// ShieldedService is how answers name a shielded holder (a locate answer's
// holder, a notice, the edge client's line): the API's one wording.
const ShieldedService = "a service that protects its patients' confidentiality"

// Row codes: a rejected row of an import report ({"line","code","message"}).
const (
	CodeMalformedCSV Code = "malformed_csv" // the row is not CSV the importer can read
	CodeDuplicate    Code = "duplicate"     // the localId repeats an earlier row
)

// Codes lists every code of the error envelope, and RowCodes every code of
// an import report's rows: what openapi.json lists.
func Codes() []Code {
	return []Code{CodeBadRequest, CodeUnauthenticated, CodeSessionExpired, CodeTokenExpired, CodeForbidden, CodeCSRFMissing,
		CodeCSRFInvalid, CodeOriginForbidden, CodeNotFound, CodeMethod, CodeTooLarge, CodeURITooLong, CodeHeadersTooLarge, CodeUnsupportedType,
		CodeRateLimited, CodeQuotaExceeded, CodeInternal, CodeUnavailable, CodeNotReady, CodeIssuersUnavailable, CodeNoTokenKey, CodeKeyAdmin, CodeWebSocket, CodeTooManyKeys, CodeTooManyWatches, CodeWatchNotFound, CodeInvalidNHSNumber,
		CodeInvalidRecord, CodeInvalidBatch, CodeInvalidElement, CodeInvalidLookupKey, CodeInvalidHolder,
		CodeInvalidSubject, CodeMessageTooLong, CodeTooLong, CodeInvalidText, CodeUnknownEpoch, CodeEvaluationFailed, CodePurpose,
		CodeNoRecord, CodeUnknownNode, CodeContactNotFound, CodeContactDecided, CodeInvalidShield, CodeNotBroker, CodeExists, CodeObjected, CodeNotIssuer, CodeNoAuditLog, CodeHolderRefused, CodeHolderFailed,
		CodeHolderUnreachable, CodeNoFederation, CodeHolderTimeout, CodeUnsupportedProtocol}
}

// RowCodes lists every code an import report's row can carry.
func RowCodes() []Code {
	return []Code{CodeMalformedCSV, CodeDuplicate, CodeInvalidNHSNumber, CodeInvalidRecord, CodeExists, CodeObjected}
}

// Error is an API error before it is written: the status, the code and a
// message that never echoes request input, and for 429 the wait to send as
// Retry-After. Handlers return it; the router writes it.
type Error struct {
	Status     int
	Code       Code
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(status int, code Code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// ErrorBody is the JSON envelope of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of [ErrorBody].
type ErrorDetail struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// WriteError writes {"error":{"code":code,"message":message}} with the given
// status. message must not contain request input.
func WriteError(w http.ResponseWriter, status int, code Code, message string) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// WriteJSON writes v as JSON with the given status and no-store caching: API
// responses may describe people and must not sit in shared caches.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrBadJSON is returned by [DecodeJSON] for every rejected body; it wraps a
// more specific reason.
var ErrBadJSON = errors.New("httpx: bad json body")

// Decode is the one JSON request rule of the node: the body must be
// application/json (any parameters), hold exactly one JSON object with no
// unknown field, no duplicate key and nothing after it ([Unmarshal]).
// r.Body should already be bounded (http.MaxBytesReader); going over the
// bound is 413. Every refusal is an *Error (415, 413 or 400) whose message
// never quotes the body.
func Decode(r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return Errorf(http.StatusUnsupportedMediaType, CodeUnsupportedType, "the body must be application/json")
	}
	data, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is over %d bytes", tooBig.Limit)
	}
	if err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "the body could not be read")
	}
	return Unmarshal(data, v)
}

// ErrDuplicateKey is wrapped by the 400 [Unmarshal] returns for an object
// that names a key twice.
var ErrDuplicateKey = errors.New("httpx: duplicate key")

// Unmarshal is the node's JSON rule for a message already in memory (a
// request body, a WebSocket message): exactly one JSON value decoded into v
// with no unknown field, nothing after it, and no object — at any depth —
// naming a key twice. encoding/json alone lets the last duplicate win, and
// matches keys without regard to case, so {"purpose":"a","Purpose":"b"}
// would reach a handler as "b" while a proxy or an auditor reading the same
// bytes sees "a"; keys are therefore compared case-folded. A refusal is a
// 400 *Error whose message never quotes the input.
func Unmarshal(data []byte, v any) error {
	if err := checkDuplicateKeys(data); err != nil {
		if errors.Is(err, ErrDuplicateKey) {
			return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "the body names a key twice"}
		}
		return Errorf(http.StatusBadRequest, CodeBadRequest, "the body is not the expected JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			if terr == nil {
				return Errorf(http.StatusBadRequest, CodeBadRequest, "the body has data after the JSON object")
			}
			err = terr
		}
	}
	if err == nil {
		return nil
	}
	// The decoder's own error can quote input (a number's digits), so it
	// is deliberately not wrapped.
	return Errorf(http.StatusBadRequest, CodeBadRequest, "the body is not the expected JSON object")
}

// foldKey maps every rune of k to the smallest rune of its simple case
// folding orbit, so that foldKey(a) == foldKey(b) exactly when
// strings.EqualFold(a, b): the rule encoding/json matches field names by
// (the Kelvin sign K and the long s ſ included).
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		return min
	}, k)
}

// checkDuplicateKeys walks data's tokens and reports ErrDuplicateKey for an
// object with two keys equal under case folding, or the tokenizer's error
// for data that is not JSON. Only the first value is walked (Unmarshal
// refuses anything after it).
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// One set of keys per open object; nil marks an open array.
	var stack []map[string]bool
	expectKey := func() bool { return len(stack) > 0 && stack[len(stack)-1] != nil }
	for {
		// In an object the decoder alternates key, value; More/Token tell
		// which one comes: a string token where a key is due is a key.
		if expectKey() && dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			k, ok := tok.(string)
			if !ok {
				return errors.New("httpx: object key is not a string")
			}
			k = foldKey(k)
			if stack[len(stack)-1][k] {
				return ErrDuplicateKey
			}
			stack[len(stack)-1][k] = true
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, map[string]bool{})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return nil
		}
	}
}

// DecodeJSON is [Decode] with the body bounded to limit bytes, for handlers
// that write their own answers: on failure it has already written the
// error response and returns an error wrapping [ErrBadJSON]; the caller
// just returns.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	err := Decode(r, v)
	if err == nil {
		return nil
	}
	var e *Error
	errors.As(err, &e)
	WriteError(w, e.Status, e.Code, e.Message)
	return fmt.Errorf("%w: %s", ErrBadJSON, e.Code)
}

// Known returns s as a Code if it is one of [Codes]: a peer's error code is
// passed on to a caller only if this node could have sent it itself.
func Known(s string) (Code, bool) {
	for _, c := range Codes() {
		if string(c) == s {
			return c, true
		}
	}
	return "", false
}

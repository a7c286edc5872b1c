package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Stable error codes. Clients branch on these; the message may change.
const (
	CodeBadRequest      = "bad_request"      // 400: malformed or invalid input
	CodeUnauthenticated = "unauthenticated"  // 401: no credentials, or they are wrong
	CodeSessionExpired  = "session_expired"  // 401: the session cookie expired
	CodeForbidden       = "forbidden"        // 403: authenticated, but the role may not do this
	CodeCSRFMissing     = "csrf_missing"     // 403: cookie session without X-CSRF-Token
	CodeCSRFInvalid     = "csrf_invalid"     // 403: X-CSRF-Token does not match the session
	CodeOriginForbidden = "origin_forbidden" // 403: Origin header not on the allow-list
	CodeNotFound        = "not_found"        // 404
	CodeMethod          = "method_not_allowed"
	CodeTooLarge        = "too_large" // 413: body over the decoder's limit
	CodeUnsupportedType = "unsupported_media_type"
	CodeRateLimited     = "rate_limited" // 429: slow down; see Retry-After
	CodeInternal        = "internal"     // 500: the node failed; details are in its log
	CodeUnavailable     = "unavailable"  // 503: e.g. the issuer is unreachable
)

// ErrorBody is the JSON envelope of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of [ErrorBody].
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes {"error":{"code":code,"message":message}} with the given
// status. message must not contain request input.
func WriteError(w http.ResponseWriter, status int, code, message string) {
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

// DecodeJSON decodes a single JSON object of at most limit bytes from r's body
// into v, rejecting unknown fields, trailing data and a Content-Type other
// than application/json. On failure it has already written the error response
// (400, 413 or 415) and returns an error wrapping [ErrBadJSON]; the caller
// just returns.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		WriteError(w, http.StatusUnsupportedMediaType, CodeUnsupportedType, "the body must be application/json")
		return fmt.Errorf("%w: content type", ErrBadJSON)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the body is over %d bytes", limit))
			return fmt.Errorf("%w: too large", ErrBadJSON)
		}
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "the body is not the expected JSON object")
		// The decoder's own error can quote input (a number's digits), so
		// it is deliberately not wrapped.
		return fmt.Errorf("%w: undecodable", ErrBadJSON)
	}
	if _, err := dec.Token(); err != io.EOF {
		WriteError(w, http.StatusBadRequest, CodeBadRequest, "the body has data after the JSON object")
		return fmt.Errorf("%w: trailing data", ErrBadJSON)
	}
	return nil
}

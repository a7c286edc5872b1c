package node

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/signpost-federation/signpost/node/internal/httpx"
)

// Uniform answers: every 4xx and 5xx the node's API server sends is the
// API's JSON error shape, including the few that net/http writes itself,
// as plain text, for a request it cannot hand to any handler.
//
// Two parts:
//
//   - The server reads header blocks up to serverMaxHeaderBytes, well above
//     the node's limits, so that an oversized header or URI normally
//     reaches checkRequestSize, which answers 431 headers_too_large or 414
//     uri_too_long in JSON. The price is memory: a connection may hold
//     that much header while it is read (it was 32 KiB).
//   - What net/http still answers itself — a request line it cannot parse
//     (a bad %-escape such as %zz), a header block over
//     serverMaxHeaderBytes, a missing Host, an unsupported
//     Transfer-Encoding or protocol version — it writes in one piece
//     straight to the connection, in a fixed format (status line,
//     "Content-Type: text/plain; charset=utf-8", "Connection: close", the
//     status as the body) and then closes it. net/http has no hook for
//     these, so Serve wraps each plain connection (jsonErrorConn) and
//     rewrites exactly that format into the JSON shape. No handler's answer
//     can have it: net/http adds a Date header to every handler response.
//
// TLS connections (node/stack's listener with tls_cert_file) are wrapped
// too, which means net/http no longer sees a *tls.Conn: the handshake
// happens on the first read, under the server's ReadHeaderTimeout, and
// Request.TLS is nil (nothing in the node reads it: Secure cookies and the
// origin rules come from the config). A plain-HTTP request sent to the TLS
// port, which net/http answers in text only when it holds the *tls.Conn
// itself, gets the JSON shape too, in the clear, saying to use https. The
// node-to-node peer server is the federation's and is not covered.

const (
	// MaxHeaderBytes bounds a request's line and headers together (431).
	MaxHeaderBytes = 32 << 10
	// MaxURIBytes bounds a request's target, path and query (414).
	MaxURIBytes = 8 << 10
	// serverMaxHeaderBytes is what net/http itself reads before it gives
	// up with its own 431 (rewritten on plain connections).
	serverMaxHeaderBytes = 256 << 10
)

// checkRequestSize answers requests over MaxURIBytes or MaxHeaderBytes in
// the JSON shape before any route sees them.
func checkRequestSize(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.RequestURI) > MaxURIBytes {
			writeError(w, http.StatusRequestURITooLong, httpx.CodeURITooLong, fmt.Sprintf("the request target is over %d bytes", MaxURIBytes))
			return
		}
		size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host)
		for k, vs := range r.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		if size > MaxHeaderBytes {
			writeError(w, http.StatusRequestHeaderFieldsTooLarge, httpx.CodeHeadersTooLarge, fmt.Sprintf("the request's headers are over %d bytes", MaxHeaderBytes))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// jsonErrorListener wraps every connection it accepts, plain or TLS, in
// jsonErrorConn (see above).
type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// Read answers a plain-HTTP request on a TLS connection in the clear, in
// the JSON shape, as net/http would have (in text) had it held the
// *tls.Conn: the handshake fails on the first read with a record header
// that looks like HTTP.
func (c *jsonErrorConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	var re tls.RecordHeaderError
	if err != nil && errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
		body, _ := json.Marshal(httpx.ErrorBody{Error: httpx.ErrorDetail{Code: httpx.CodeBadRequest, Message: "this node serves HTTPS: use an https:// address"}})
		body = append(body, '\n')
		fmt.Fprintf(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		re.Conn.Close()
	}
	return n, err
}

// looksLikeHTTP reports whether the first five bytes of a connection are
// the start of an HTTP request line rather than a TLS record.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

// jsonErrorConn rewrites net/http's own plain-text error answers.
type jsonErrorConn struct{ net.Conn }

// CloseWrite passes the half-close net/http does before it closes a
// connection it refused (so that the client reads the answer rather than
// a reset) to the connection underneath.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// goErrorHeaders is what net/http writes between the status line and the
// body of the errors it answers itself (net/http's server.go, errorHeaders).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func (c *jsonErrorConn) Write(b []byte) (int, error) {
	status, ok := goPlainError(b)
	if !ok {
		return c.Conn.Write(b)
	}
	code, msg := httpx.CodeBadRequest, "the request could not be parsed as HTTP"
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		code, msg = httpx.CodeHeadersTooLarge, fmt.Sprintf("the request's headers are over %d bytes", MaxHeaderBytes)
	case status >= 500:
		code, msg = httpx.CodeUnsupportedProtocol, "the request uses a protocol feature this server does not support"
	}
	body, _ := json.Marshal(httpx.ErrorBody{Error: httpx.ErrorDetail{Code: code, Message: msg}})
	body = append(body, '\n')
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: %d\r\n\r\n",
		status, http.StatusText(status), len(body))
	out.Write(body)
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// goPlainError reports whether b is one of net/http's own error answers
// (the whole of it: net/http writes each in one call) and its status.
func goPlainError(b []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || rest[3] != ' ' {
		return 0, false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil || status < 400 || status > 599 {
		return 0, false
	}
	line, after, ok := bytes.Cut(rest, []byte("\r\n"))
	if !ok || bytes.ContainsAny(line, "\n") {
		return 0, false
	}
	return status, bytes.HasPrefix(after, []byte(goErrorHeaders[2:])) && !bytes.Contains(after[len(goErrorHeaders)-2:], []byte("\r\n"))
}

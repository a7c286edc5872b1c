package node

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange sends raw bytes to addr and reads one response.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, raw) // a refused request may be answered before it is all sent
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", raw, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestUniformAnswers: every 4xx and 5xx of the API server is the JSON
// error shape — the probe's plain-text cases (a 200 KB header, a 60 KB
// id, a bad %zz escape) included, and the other requests net/http answers
// itself before any handler.
func TestUniformAnswers(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	big := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name, raw string
		status    int
		code      string
	}{
		{"bad escape", "GET /v1/records/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"},
		{"bad escape, delete", "DELETE /v1/records/a%zzb HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n\r\n", 400, "bad_request"},
		{"200 KB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big(200<<10) + "\r\n\r\n", 431, "headers_too_large"},
		{"2 MB header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + big(2<<20) + "\r\n\r\n", 431, "headers_too_large"},
		{"60 KB id", "DELETE /v1/records/" + big(60<<10) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n\r\n", 414, "uri_too_long"},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"two Hosts", "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "bad_request"},
		{"garbage request line", "HELLO\r\n\r\n", 400, "bad_request"},
		{"unsupported transfer encoding", "POST /v1/locate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported_protocol"},
		{"unsupported version", "GET /healthz HTTP/2.5\r\nHost: x\r\n\r\n", 505, "unsupported_protocol"},
		{"path outside the API", "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"},
		{"method on a probe", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := rawExchange(t, addr.String(), tc.raw)
			if res.StatusCode != tc.status || !isErrorShape(body) || !strings.Contains(body, `"code":"`+tc.code+`"`) ||
				res.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("%d %s %q", res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if strings.Contains(body, "aaaa") || strings.Contains(body, "zz") {
				t.Fatal("the answer quotes the request")
			}
			if res, body := rawExchange(t, addr.String(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); res.StatusCode != 200 {
				t.Fatalf("healthz after: %d %s", res.StatusCode, body)
			}
		})
	}
}

// TestGoPlainErrorOnlyMatchesNetHTTP: the rewrite recognises net/http's
// own error answers and nothing a handler writes (which has a Date).
func TestGoPlainErrorOnlyMatchesNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		b    string
		want int
	}{
		{"HTTP/1.1 400 Bad Request" + goErrorHeaders + "400 Bad Request", 400},
		{"HTTP/1.1 431 Request Header Fields Too Large" + goErrorHeaders + "431 Request Header Fields Too Large", 431},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + goErrorHeaders + "400 Bad Request: missing required Host header", 400},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sun, 06 Dec 2026 11:00:00 GMT\r\nConnection: close\r\n\r\n400 Bad Request", 0},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\n\r\n{}", 0},
		{"HTTP/1.1 200 OK" + goErrorHeaders + "ok", 0},
		{"HTTP/1.1 400 Bad Request" + goErrorHeaders + "400\r\nmore", 0},
		{"\x81\x05hello", 0},
	} {
		got, ok := goPlainError([]byte(tc.b))
		if tc.want == 0 && ok || tc.want != 0 && got != tc.want {
			t.Errorf("%.50q: %d %v, want %d", tc.b, got, ok, tc.want)
		}
	}
}

package node

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportFileMapsLines(t *testing.T) {
	a := newTestNode(t, newFakeFed(), "a", nil)
	var b strings.Builder
	b.WriteString("localId,nhsNumber\n")
	nums := SyntheticNumbers(importChunk + 10)
	for i, n := range nums {
		if i == importChunk+3 {
			n = "9990000013" // wrong check digit, on line importChunk+5 of the file
		}
		b.WriteString("r" + itoa(i) + "," + n + "\n")
	}
	var calls int
	rep, err := ImportFile(context.Background(), http.DefaultClient, a.srv.URL, "op-token", strings.NewReader(b.String()), int64(b.Len()), func(done, total int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != importChunk+9 || rep.Failed != 1 || rep.Errors[0].Line != importChunk+5 || calls < 2 {
		t.Fatalf("report: %+v calls %d", rep, calls)
	}
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + func() string { return fmtInt(i) }())
}

func fmtInt(i int) string {
	var buf [20]byte
	p := len(buf)
	if i == 0 {
		return "0"
	}
	for i > 0 {
		p--
		buf[p] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[p:])
}

func TestNodeMainUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := NodeMain(context.Background(), nil, nil, &out, &errb); code != 2 {
		t.Fatalf("no args: %d", code)
	}
	out.Reset()
	if code := NodeMain(context.Background(), []string{"init", "-node-id", "harbour-gp"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "node_id = harbour-gp") {
		t.Fatalf("init: %d %s", code, out.String())
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "node.conf")
	os.WriteFile(p, out.Bytes(), 0o600)
	errb.Reset()
	if code := NodeMain(context.Background(), []string{"--config", p}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "credentials_file") {
		t.Fatalf("missing credentials must be reported: %d %s", code, errb.String())
	}
}

package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/node/internal/records"
)

// TestShutdownLosesNothingAcknowledged writes records from several clients
// while the node shuts down: every record answered 201 is in the store
// when it is opened again.
func TestShutdownLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Category, cfg.DataDir, cfg.Listen = "a", "gp", dir, "127.0.0.1:0"
	fed := newFakeFed()
	n, err := New(cfg, Options{Tokenizer: &fakeTokenizer{}, Index: fed.index("a", "A"), Auth: tokens,
		Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := n.Serve(nil)
	if err != nil {
		t.Fatal(err)
	}
	nums := SyntheticNumbers(400)
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for i := w; i < len(nums); i += 4 {
				id := fmt.Sprintf("r%d", i)
				req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v1/records", strings.NewReader(`{"localId":"`+id+`","nhsNumber":"`+nums[i]+`"}`))
				req.Header.Set("Authorization", "Bearer op-token")
				res, err := c.Do(req)
				if err != nil {
					return // the server has gone
				}
				res.Body.Close()
				if res.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, id)
					if len(acked) == 20 {
						once.Do(func() { close(started) })
					}
					mu.Unlock()
				}
			}
		}(w)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err := records.Open(filepath.Join(dir, "records.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range acked {
		if _, err := s.Get(id); err != nil {
			t.Fatalf("acknowledged record %s lost: %v", id, err)
		}
	}
	t.Logf("%d records acknowledged before shutdown, all present", len(acked))
}

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signpost-federation/signpost/wasm/testutil"
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
	nums := syntheticNumbers(400)
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
				req.Header.Set("Content-Type", "application/json")
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
	workersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(workersDone)
	}()
	select {
	case <-started:
	case <-workersDone:
		mu.Lock()
		got := len(acked)
		mu.Unlock()
		n.Shutdown(context.Background())
		t.Fatalf("the clients stopped with %d of %d writes acknowledged; shutdown must start with at least 20 acknowledged and more in flight (see the log for why writes failed)", got, len(nums))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err := openRecordsIn(dir)
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

// gateTokenizer holds the first tokenisation until the test releases it,
// and says when it has been entered: a request is then in flight.
type gateTokenizer struct {
	fakeTokenizer
	entered, release chan struct{}
	once             sync.Once
}

func (g *gateTokenizer) Keys(ctx context.Context, ev Evaluator, purpose string, nums []string) ([]Keys, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return g.fakeTokenizer.Keys(ctx, ev, purpose, nums)
}

// TestShutdownDrainsInFlight: Shutdown stops taking connections at once but
// waits for a request already in its handler; that request is answered 201
// and its record is in the store; Shutdown then returns, and again
// (idempotent).
func TestShutdownDrainsInFlight(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Category, cfg.DataDir = "a", "gp", dir
	gate := &gateTokenizer{entered: make(chan struct{}), release: make(chan struct{})}
	n, err := New(cfg, Options{Tokenizer: gate, Index: newFakeFed().index("a", "A"), Auth: tokens,
		Logger: slog.New(slog.NewTextHandler(testLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := n.Serve(ln)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v1/records", strings.NewReader(`{"localId":"r1","nhsNumber":"9990000018"}`))
		req.Header.Set("Authorization", "Bearer op-token")
		req.Header.Set("Content-Type", "application/json")
		res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			answered <- 0
			return
		}
		res.Body.Close()
		answered <- res.StatusCode
	}()
	<-gate.entered
	stopped := make(chan error, 1)
	go func() { stopped <- n.Shutdown(context.Background()) }()
	// New connections are refused once shutdown has begun...
	testutil.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return nil
		}
		c.Close()
		return errors.New("the listener is still open after Shutdown began")
	})
	if n.ready.Load() {
		t.Fatal("ready while shutting down")
	}
	// ...but Shutdown waits for the request in its handler.
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(gate.release)
	if st := <-answered; st != http.StatusCreated {
		t.Fatalf("the in-flight request got %d, want 201", st)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal("second shutdown:", err)
	}
	s, err := openRecordsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get("r1"); err != nil {
		t.Fatalf("the acknowledged record is not in the store: %v", err)
	}
}

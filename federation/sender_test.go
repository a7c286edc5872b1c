package federation

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestSenderRetiresWhenIdle: a peer's sender goroutine exits after
// senderIdle without work, and the next message starts a new one.
func TestSenderRetiresWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &Agent{shutdownCh: make(chan struct{})}
		a.cfg.SendQueueLen = 4
		a.mu.senders = map[string]*sender{}
		current := func() *sender {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.mu.senders["node-1"]
		}
		s := a.senderFor("node-1")
		time.Sleep(senderIdle - time.Second)
		synctest.Wait()
		if current() != s {
			t.Fatal("sender retired early")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if current() != nil {
			t.Fatal("idle sender not retired")
		}
		a.wg.Wait() // its goroutine has exited
		if s2 := a.senderFor("node-1"); s2 == s || current() != s2 {
			t.Fatal("no new sender after retirement")
		}
		close(a.shutdownCh)
		a.wg.Wait()
	})
}

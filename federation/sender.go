package federation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// outItem is one queued call to a peer: a protocol message (batched with
// others), or a single call (a revocation list or key record push, a DKG
// message) of body to path.
type outItem struct {
	msg  []byte
	path string
	body []byte
}

// senderIdle is how long a sender goroutine waits for work before it
// retires (a peer that left or was revoked stops costing a goroutine).
const senderIdle = 2 * time.Minute

// sender owns the outgoing queue to one peer and the goroutine that drains
// it. It lives until the agent shuts down or it has been idle for
// senderIdle; senderFor then starts a new one.
type sender struct {
	to string
	q  chan outItem
}

// enqueue adds it without blocking; false means the queue was full.
func (s *sender) enqueue(it outItem) bool {
	select {
	case s.q <- it:
		return true
	default:
		return false
	}
}

// senderFor returns the sender for peer, starting it if needed; nil after
// shutdown began.
func (a *Agent) senderFor(to string) *sender {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.closed {
		return nil
	}
	s := a.mu.senders[to]
	if s == nil {
		s = &sender{to: to, q: make(chan outItem, a.cfg.SendQueueLen)}
		a.mu.senders[to] = s
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.runSender(s)
		}()
	}
	return s
}

// runSender drains s.q, packing consecutive protocol messages into one batch
// POST up to MaxMessageBytes.
func (a *Agent) runSender(s *sender) {
	var batch []byte
	var n int
	idle := time.NewTimer(senderIdle)
	defer idle.Stop()
	for {
		var it outItem
		idle.Reset(senderIdle)
		select {
		case <-a.shutdownCh:
			return
		case <-idle.C:
			if a.retireSender(s) {
				return
			}
			continue
		case it = <-s.q:
		}
		if it.path != "" {
			a.post(s.to, it.path, it.body, 1)
			continue
		}
		batch = appendFrame(batch[:0], it.msg)
		n = 1
	fill:
		for n < maxBatchMessages {
			select {
			case next := <-s.q:
				if next.path != "" {
					a.post(s.to, next.path, next.body, 1)
					continue
				}
				if len(batch)+len(next.msg)+10 > a.cfg.MaxMessageBytes {
					a.post(s.to, PeerMessagesPath, batch, n)
					batch, n = batch[:0], 0
				}
				batch = appendFrame(batch, next.msg)
				n++
			default:
				break fill
			}
		}
		if n > 0 {
			a.post(s.to, PeerMessagesPath, batch, n)
		}
	}
}

// retireSender removes s from the agent's senders if its queue is empty.
// A message enqueued on s by a caller that fetched it just before is lost
// like any dropped message (anti-entropy repairs it).
func (a *Agent) retireSender(s *sender) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(s.q) > 0 {
		return false
	}
	if a.mu.senders[s.to] == s {
		delete(a.mu.senders, s.to)
	}
	return true
}

// post makes one call; failures are counted and logged at debug level
// (anti-entropy repairs lost messages).
func (a *Agent) post(to, path string, body []byte, n int) {
	if a.blockedPeer(to) {
		a.stats.sendFailed.Add(uint64(n))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	stop := context.AfterFunc(a.shutdownCtx, cancel)
	defer stop()
	err := a.postOnce(ctx, to, path, body)
	if err != nil {
		a.stats.sendFailed.Add(uint64(n))
		a.log.Debug("peer call failed", "peer", to, "path", path, "messages", n, "err", err)
		return
	}
	a.stats.sent.Add(uint64(n))
}

func (a *Agent) postOnce(ctx context.Context, to, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.PeerURL(to, path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

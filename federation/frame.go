package federation

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A batch is the body of a POST to /federation/v1/messages: one or more
// protocol messages, each preceded by its length as a uvarint. Messages are
// opaque here; the protocol core decodes them.

// maxBatchMessages bounds the messages in one batch.
const maxBatchMessages = 4096

func appendFrame(b, msg []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(msg)))
	return append(b, msg...)
}

// decodeBatch splits a batch. Each message is a sub-slice of b. It refuses
// empty batches, non-minimal length prefixes, empty or oversized messages, more than maxBatchMessages
// messages and truncated input.
func decodeBatch(b []byte, maxMsg int) ([][]byte, error) {
	if maxMsg < 1 {
		return nil, errors.New("federation: batch: message limit must be positive")
	}
	var msgs [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) {
			return nil, errors.New("federation: batch: bad length prefix")
		}
		b = b[k:]
		if n == 0 || n > uint64(maxMsg) || n > uint64(len(b)) {
			return nil, fmt.Errorf("federation: batch: message length %d invalid (limit %d, %d bytes left)", n, maxMsg, len(b))
		}
		if len(msgs) == maxBatchMessages {
			return nil, fmt.Errorf("federation: batch: more than %d messages", maxBatchMessages)
		}
		msgs = append(msgs, b[:n:n])
		b = b[n:]
	}
	if len(msgs) == 0 {
		return nil, errors.New("federation: batch: empty")
	}
	return msgs, nil
}

package federation

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Node metadata envelope carried in memberlist's Node.Meta (≤ 512 bytes):
//
//	"SPM1" | u16 length | signed descriptor | u8 length | peer address
//
// The peer address is where the node's peer API listens: "host:port", or
// ":port" meaning "at the node's gossip IP". It is not signed by the
// authority — TLS authenticates the key at that address, so a wrong address
// only makes calls fail.
const metaMagic = "SPM1"

type nodeMeta struct {
	descriptor []byte // encoded SignedDescriptor
	peerAddr   string
}

func (m *nodeMeta) encode() []byte {
	b := make([]byte, 0, len(metaMagic)+2+len(m.descriptor)+1+len(m.peerAddr))
	b = append(b, metaMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.descriptor)))
	b = append(b, m.descriptor...)
	return appendStr8(b, m.peerAddr)
}

// decodeNodeMeta parses the envelope; an empty input means the node presents
// no descriptor (ErrNotEnrolled).
func decodeNodeMeta(b []byte) (*SignedDescriptor, string, error) {
	if len(b) == 0 {
		return nil, "", ErrNotEnrolled
	}
	r := reader{b: b}
	if string(r.next(len(metaMagic))) != metaMagic {
		return nil, "", fmt.Errorf("node metadata: bad magic: %w", ErrNotEnrolled)
	}
	n := r.next(2)
	if n == nil {
		return nil, "", fmt.Errorf("node metadata: truncated: %w", ErrDescriptorForged)
	}
	raw := r.next(int(binary.BigEndian.Uint16(n)))
	addr := r.str8()
	if r.err != nil || len(r.b) != 0 {
		return nil, "", fmt.Errorf("node metadata: malformed: %w", ErrDescriptorForged)
	}
	sd, err := DecodeSignedDescriptor(raw)
	if err != nil {
		return nil, "", errors.Join(err, ErrDescriptorForged)
	}
	return sd, addr, nil
}

// Package secrethook lets the node's tests learn every secret the
// production code makes, so that their leak scanner (node/internal/leakscan)
// can look for it in every log line and HTTP answer of the run. It owns
// three hooks and nothing else; production leaves them nil, and tests set them
// before any node starts.
package secrethook

import (
	"crypto/ed25519"

	"github.com/signpost-federation/signpost/wasm"
)

// Tokens, when set, is told every token the wasm tokenizer makes and the
// number it was made from (node/adapter).
var Tokens func(numbers []string, toks []wasm.Token)

// Stack, when set, is told the key material of every stack that starts
// (node/stack).
var Stack func(Secrets)

// Share, when set, is told every token key share a node loads to evaluate
// with (node/adapter).
var Share func(value []byte)

// Secrets is a stack's key material.
type Secrets struct {
	NodeKey    ed25519.PrivateKey
	GossipKeys [][]byte
	Holder     [32]byte
	// AuditLogPath is the audit log; its subject-ref key is beside it.
	AuditLogPath string
}

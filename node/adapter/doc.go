// Package adapter binds the node's ports (node/port) to the real parts of
// Signpost: [WasmTokenizer] to the wasm module under wazero (validation,
// blinding, proof verification, key derivation) and [IssuerEvaluator] to
// the wasm package's native issuer; [LocatorIndex] to this node's locator
// Holder and the federation's replica; [AgentPeers] to the federation
// agent's mutually authenticated peer transport and membership. It imports
// node/port, never the core (package node), so that the core's own tests
// can run against these adapters; node/stack assembles them into a node.
package adapter

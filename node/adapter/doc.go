// Package adapter binds the node's ports (node/port) to the real parts of
// Signpost: [NativeTokenizer] to the wasm module's source compiled natively
// (validation, blinding, verifying and combining issuers' partial
// evaluations, key derivation — the node's own server-side work), and
// [WasmTokenizer] to the module itself under wazero, which tests hold it
// to; [FederationKeyring] to the federation's signed key records
// and this node's key shares (loaded into the wasm package's native
// ShareIssuer), [Keyring] for key sets given directly; [LocatorIndex] to this node's locator
// Holder and the federation's replica; [AgentPeers] to the federation
// agent's mutually authenticated peer transport and membership. It imports
// node/port, never the core (package node), so that the core's own tests
// can run against these adapters; node/stack assembles them into a node.
package adapter

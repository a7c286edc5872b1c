// Package stack assembles complete Signpost nodes from the core (package
// node), the adapters (node/adapter) and the parts they bind: [StartStack]
// starts one agency's node (federation agent and its replica, wasm runtime,
// the federation's token keys and this node's key shares, users and sessions, the signed audit
// log, the HTTP server, background republication, and the metrics registry
// on which the federation's, memberlist's and the replica's collectors sit
// beside the core's); [StartDemo] starts four
// on loopback with an authority made on the fly, three of which make the
// token keys with a DKG. [NodeMain] and [DemoMain]
// are the `signpost node` and `signpost demo` commands. It owns the
// assembly only: every rule of the node lives in the core.
package stack

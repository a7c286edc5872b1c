package node_test

import (
	"fmt"
	"strings"

	"github.com/signpost-federation/signpost/node"
)

// ParseConfig reads the TOML that `signpost node init` writes; anything not
// set keeps its default.
func ExampleParseConfig() {
	cfg, legacy, err := node.ParseConfig("node.toml", strings.NewReader(`
node_id = "harbour-gp"
category = "gp"
purposes = ["direct-care"]
retention_default = "8y"
`))
	fmt.Println(err)
	cfg, legacy, err = node.ParseConfig("node.toml", strings.NewReader(`
node_id = "harbour-gp"
category = "gp"
purposes = ["direct-care"]
retention_default = "2920d"
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.NodeID, cfg.Category, cfg.Purposes, cfg.Listen, cfg.RetentionDefault.D().Hours()/24, legacy)
	// Output:
	// node: invalid config: node.toml:5:21: retention_default: want a duration such as "10s", "36h" or "2190d", got "8y"
	// harbour-gp gp [direct-care] 127.0.0.1:8080 2920 false
}

package node_test

import (
	"fmt"
	"strings"

	"github.com/signpost-federation/signpost/node"
)

// ParseConfig reads the flat key = value format that `signpost node init`
// writes; anything not set keeps its default.
func ExampleParseConfig() {
	cfg, err := node.ParseConfig(stringsReader("node_id = harbour-gp\ncategory = gp\npurposes = direct-care\n"))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.NodeID, cfg.Category, cfg.Purposes, cfg.Listen)
	// Output: harbour-gp gp [direct-care] 127.0.0.1:8080
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

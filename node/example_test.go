package node_test

import (
	"fmt"
	"strings"

	"github.com/signpost-federation/signpost/node"
)

// SyntheticNumbers gives valid NHS numbers from the 999 test range, for
// fixtures and demos.
func ExampleSyntheticNumbers() {
	for _, n := range node.SyntheticNumbers(3) {
		fmt.Println(n)
	}
	// Output:
	// 9990000018
	// 9990000026
	// 9990000034
}

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

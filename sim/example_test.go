package sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/signpost-federation/signpost/sim"
)

func Example() {
	sc, err := sim.Builtin("steady")
	if err != nil {
		panic(err)
	}
	sc.Nodes = 20
	sc.Shorten(20 * time.Second)
	r, err := sim.Run(context.Background(), sc)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Schema, r.Entries.Published > 0, r.Convergence.UpNodes)
	// Output: signpost-sim-report/v1 true 20
}

package ident

import "flag"

var seedFlag = flag.Uint64("seed", 0, "seed for randomised tests (0: random)")

module trellis/bench/upstream

go 1.24

# The bench/linux workload, shared by run.sh and profile.sh.
# shellcheck shell=bash

# bench_body N: N Switches brI + 2N veth Ports vIa/vIb with peers vIap/vIbp, on the Target "bench" (written
# separately: its netns differs per measurement). Names stay far below IFNAMSIZ-1 (15) for any N accepted.
bench_body() {
  awk -v n="$1" 'BEGIN {
    for (i = 0; i < n; i++) {
      printf "---\napiVersion: vnetplan.io/v1\nkind: Switch\nmetadata: {name: br%d}\nspec: {targets: [bench]}\n", i
      for (s = 0; s < 2; s++) {
        p = "v" i (s ? "b" : "a")
        printf "---\napiVersion: vnetplan.io/v1\nkind: Port\nmetadata: {name: %s}\n", p
        printf "spec: {targets: [bench], switch: br%d, type: veth, peer: %sp}\n", i, p
      }
    }
  }'
}

# bench_target NS: the Target document for namespace NS.
bench_target() {
  printf 'apiVersion: vnetplan.io/v1\nkind: Target\nmetadata: {name: bench}\nspec: {provider: linux, netns: %s}\n' "$1"
}

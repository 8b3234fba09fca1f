#!/usr/bin/env bash
# Networking benchmark (issue 13): the latency --network on adds to `true` through the API, per runtime, and a
# 100 MiB HTTP download from a test-made remote host (a namespace on this machine) in a networked sandbox vs the same
# download on the host; then the uplink alone (attach/close time, memory). See docs/benchmarks.md.
# Usage: bench/network.sh [runc|runsc|both]     (root; slirp4netns, nftables, busybox-static, python3, iproute2)
# Env: BENCH_N=30 latency rounds, BENCH_DOWNLOADS=5. Raw output: bench/results/<date>-network-<which>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
which=${1:-both}
case "$which" in runc|runsc|both) ;; *) echo "usage: $0 [runc|runsc|both]" >&2; exit 2 ;; esac
for tool in slirp4netns nft busybox python3 ip; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
out="bench/results/$(date +%F)-network-$which.txt"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.network.NetworkBench "$which" | tee "$out"
echo "raw output: $out"

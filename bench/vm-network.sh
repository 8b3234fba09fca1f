#!/usr/bin/env bash
# What networking costs a vm-runtime execution: `true` without and with --network on (interleaved), boot to the
# command and per execution; then a networked download in the guest from a test-made remote host. See docs/benchmarks.md.
# Usage: bench/vm-network.sh [N] [blob MiB]     (root; qemu-system-x86, slirp4netns, nftables, busybox-static, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -B -o test-compile
mvn -q -B -o dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
out="bench/results/$(date +%F)-vm-network.txt"
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.network.VmNetBench "${1:-7}" "${2:-16}" | tee "$out"
echo "raw output: $out"

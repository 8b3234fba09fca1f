#!/usr/bin/env bash
# Tree explorer benchmark (issue 15): ~2,000 images made by real runc executions through the API (a chain of 200,
# 9 branches per step), then headless chromium measures first render, full load, re-render and panning frame times.
# See docs/benchmarks.md#tree-explorer. Usage: bench/explorer.sh   (root; runc, busybox-static, chromium, node)
# Env: BENCH_CHAIN=200 BENCH_BRANCHES=9 BENCH_PARALLEL=8
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.bench.ExplorerBench

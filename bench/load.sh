#!/usr/bin/env bash
# Bounded load test on loopback: a ConTree server in its own JVM, 200 concurrent pollers plus
# sustained executions at the server's concurrency for a fixed time; reports throughput, p50/p99
# latency per route, errors and the server's RSS before/after. Stops by itself.
# Usage: bench/load.sh [SECONDS=60] [POLLERS=200] [runc|runsc] [POLL_INTERVAL_MS=1000]    (root)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -B -DskipTests package
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
exec "$JAVA_HOME/bin/java" -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.bench.LoadBench "${1:-60}" "${2:-200}" "${3:-runc}" "${4:-1000}"

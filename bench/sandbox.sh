#!/usr/bin/env bash
# Latency of `true` through ConTree's Java sandbox runtime vs the raw OCI runtime CLI
# (`runc run` / `runsc run` of a minimal bundle), measured in the same JVM, median of N.
# Usage: bench/sandbox.sh [N] [runc|runsc ...]     (root; runc, runsc, busybox-static, jq)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
N=${1:-20}; shift || true
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
exec "$JAVA_HOME/bin/java" -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.sandbox.SandboxBench "$N" "$@"

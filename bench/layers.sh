#!/usr/bin/env bash
# Snapshot-store benchmark: a fresh loop-mounted btrfs image under /tmp, removed afterwards. Needs root.
# Usage: bench/layers.sh [chainLength=2000] [manyLayers=5000]
# BENCH_JAVA_OPTS=-Dbench.maxDepth=N tries another maximum mount depth (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
[ "$(id -u)" = 0 ] || { echo "bench/layers.sh must run as root (btrfs ioctls, mount)" >&2; exit 1; }
mvn -q -B -o test-compile dependency:build-classpath -Dmdep.outputFile=target/layers-bench.cp >/dev/null 2>&1 \
  || mvn -q -B test-compile dependency:build-classpath -Dmdep.outputFile=target/layers-bench.cp
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx1g ${BENCH_JAVA_OPTS:-} \
  -cp "target/classes:target/test-classes:$(cat target/layers-bench.cp)" dev.contree.layers.LayersBench "$@"

#!/usr/bin/env bash
# Object store benchmark: pack + upload of a commit and fetch + unpack on another pool, against the local commit and
# prepare (two loop-mounted btrfs pools under /tmp and S3Proxy on loopback, removed afterwards). Needs root.
# Usage: bench/objects.sh [rounds=5]   (run it under flock /work/notes/heavy.lock on shared machines)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
[ "$(id -u)" = 0 ] || { echo "bench/objects.sh must run as root (btrfs ioctls, mount)" >&2; exit 1; }
mvn -q -B -o test-compile dependency:build-classpath -Dmaven.main.skip -Dmdep.outputFile=target/objects-bench.cp >/dev/null 2>&1 \
  || mvn -q -B test-compile dependency:build-classpath -Dmdep.outputFile=target/objects-bench.cp
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx1g ${BENCH_JAVA_OPTS:-} \
  -cp "target/classes:target/test-classes:$(cat target/objects-bench.cp)" dev.contree.layers.ObjectStoreBench "$@"

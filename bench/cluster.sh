#!/usr/bin/env bash
# Cluster queue benchmark (issue 14): executions per second through one api node with one worker, then two, on a
# real PostgreSQL 15 (started in a temp dir), a real registry and runc sandboxes; all nodes in one JVM, each with
# its own data dir. Both worker counts share this machine's CPUs, so the ratio measures what the queue and a second
# worker's own scheduler add or cost, not the scaling of separate machines. See docs/benchmarks.md.
# The object-store costs (cold layer-chain fetch, layer upload at commit) come with the object-store branch.
# Usage: bench/cluster.sh      (root; runc, busybox-static, skopeo, docker-registry, postgresql-15, btrfs-progs)
# Env: CLUSTER_N=120 runs per worker count, CLUSTER_CLIENTS=8 concurrent clients
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export MAVEN_OPTS=${MAVEN_OPTS:---sun-misc-unsafe-memory-access=allow}
for tool in runc busybox skopeo; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
[ -x /usr/lib/postgresql/15/bin/initdb ] || { echo "missing: postgresql-15" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
mvn -q -B -o test-compile
mvn -q -B -o dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
exec "$JAVA_HOME/bin/java" -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" dev.contree.cluster.ClusterBench

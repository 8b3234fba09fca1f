#!/usr/bin/env bash
# End-to-end execution benchmark (issue 5): latency of one step through the API vs the raw runtime vs
# `podman run` + `podman commit`; 10/100-way fan-out; snapshot overhead (0 B / 100 MiB / 10,000 files).
# Everything in one JVM, interleaved, medians/p90s/ratios. See docs/benchmarks.md.
# Usage: bench/exec.sh [runc|runsc|both]      (root; runc, runsc, podman, busybox-static, jq, btrfs-progs)
# Env: BENCH_N=15 latency rounds, BENCH_FANOUT_REPS=3, BENCH_SNAP_REPS=5, BENCH_PODMAN_100=1,
#      BENCH_SECTIONS=latency,fanout,snapshot
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
which=${1:-both}
case "$which" in runc|runsc|both) ;; *) echo "usage: $0 [runc|runsc|both]" >&2; exit 2 ;; esac
for tool in runc podman jq busybox; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
[ "$which" = runc ] || command -v runsc >/dev/null || { echo "missing: runsc" >&2; exit 2; }
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
# podman with --runtime runsc needs a high fd limit here.
ulimit -n 20000 2>/dev/null || true
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
exec "$JAVA_HOME/bin/java" -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.bench.ExecBench "$which"

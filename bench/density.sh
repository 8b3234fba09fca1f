#!/usr/bin/env bash
# Density benchmark (issue 11): N concurrent sleeping sandboxes per runtime (time until all EXECUTING, host
# processes / RSS / PSS / fds per sandbox from /proc, MemAvailable, API p50/p99 for whoami / get operation /
# spawn from a separate client JVM, all SUCCESS?), then a burst of B kept `echo $i > /f` executions from one
# parent against the raw runtime doing the same B runs at the same parallelism. See docs/benchmarks.md.
# Usage: bench/density.sh [runsc-flags]     (root; runc, runsc, busybox-static, jq, btrfs-progs)
#   runsc-flags: instead, what one idle sleeping sandbox costs under runc and under runsc with each flag
#   variant (FLAGS_K=8 raw sandboxes per variant; FLAGS_ONLY=substring picks variants).
# Env: DENSITY_RUNTIMES=runc,runsc  DENSITY_N=100,300,1000  DENSITY_RUNSC_MAX=300 (runsc skips larger N)
#      DENSITY_BURST=1000 (0 = skip)  DENSITY_BURST_PARALLEL=4  DENSITY_HOLD_S (sleep window; default from N)
#      DENSITY_SANDBOX_MEMORY=64m  DENSITY_PROBE_MS=250  DENSITY_MAX_S=3600 (hard bound on the whole run)
set -euo pipefail
main=dev.contree.bench.DensityBench
case "${1:-}" in "") ;; runsc-flags) main=dev.contree.bench.RunscFlagsBench ;; *) echo "usage: $0 [runsc-flags]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
export MAVEN_OPTS=${MAVEN_OPTS:---sun-misc-unsafe-memory-access=allow}
for tool in runc jq busybox; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
case ",${DENSITY_RUNTIMES:-runc,runsc}," in *,runsc,*) command -v runsc >/dev/null || { echo "missing: runsc" >&2; exit 2; } ;; esac
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
# A thousand sandboxes hold a few thousand pipe fds in the server and more in the runtimes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
export CONTREE_LOG_LEVEL=${CONTREE_LOG_LEVEL:-WARN}
export DENSITY_WORK
DENSITY_WORK=$(mktemp -d /tmp/contree-density.XXXXXX)
java_pid=

cleanup() {
    set +e
    [ -n "$java_pid" ] && kill "$java_pid" 2>/dev/null && sleep 5
    # Whatever the servers left: containers in the runtimes' state dirs under the work dir, then mounts, then files.
    for root in $(find "$DENSITY_WORK" -maxdepth 5 -type d \( -name 'raw-state-*' -o -name 'flags-state-*' -o -path '*/data/runtime*' \) 2>/dev/null); do
        for rt in runc runsc; do
            command -v "$rt" >/dev/null || continue
            for cid in $("$rt" --root "$root" list -q 2>/dev/null); do "$rt" --root "$root" delete --force "$cid" >/dev/null 2>&1; done
        done
    done
    for pid in $(pgrep -f "$DENSITY_WORK" 2>/dev/null); do [ "$pid" != $$ ] && kill -9 "$pid" 2>/dev/null; done
    awk -v p="$DENSITY_WORK" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$DENSITY_WORK"
}
trap cleanup EXIT INT TERM

echo "uptime before: $(uptime)"
timeout --signal=TERM "${DENSITY_MAX_S:-3600}" "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED \
    -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" "$main" &
java_pid=$!
rc=0
wait "$java_pid" || rc=$?
java_pid=
echo "uptime after: $(uptime)"
exit "$rc"

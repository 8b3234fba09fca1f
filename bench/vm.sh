#!/usr/bin/env bash
# The vm runtime (a QEMU microVM per execution) against runc and runsc in one JVM: `true` per execution, boot to the
# first command, a live `true` subprocess round trip, a 10-way fan-out; then boot-time choices (machine options,
# kernel command line). Under TCG on a host without usable KVM: say so with the numbers.
# Usage: bench/vm.sh [N] [boot-choices: yes|no|only]     (root; qemu-system-x86, runc, runsc, busybox-static)
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
mvn -q -B -o test-compile
mvn -q -B -o dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
exec "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "target/classes:target/test-classes:$(cat target/bench-cp.txt)" \
    dev.contree.sandbox.VmBench "${1:-5}" "${2:-yes}"

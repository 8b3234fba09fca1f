#!/usr/bin/env bash
# Registry import time of a ~250 MB, 3-layer Debian image (debootstrap minbase + python3) from a local
# docker-registry: ConTree cold (fresh data dir) and warm (re-import), side by side with the baseline
# `skopeo copy docker://… oci:<dir>` + `tar -x` of each layer into one directory, in the same run.
# Usage: bench/import.sh [ROUNDS]    (root; debootstrap, skopeo, docker-registry, jq, pigz)
# BENCH_JAVA_OPTS adds JVM options to the ConTree side (e.g. -XX:StartFlightRecording=filename=/tmp/import.jfr).
set -euo pipefail
cd "$(dirname "$0")/.."
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
ROUNDS=${1:-3}
CACHE=${CONTREE_BENCH_CACHE:-/var/tmp/contree-bench}
ROOTFS=$(bench/import-rootfs.sh)
command -v pigz >/dev/null || apt-get install -y pigz >&2

# ---- OCI layout with 3 gzip layers: everything but /usr, /usr without /usr/lib, /usr/lib (cached)
L=$CACHE/layout
if [ ! -f "$L/done" ]; then
    rm -rf "$L"; mkdir -p "$L/blobs/sha256"
    layer() { # name, tar args… → "diff_id digest size"
        local t="$CACHE/$1.tar"
        tar -C "$ROOTFS" --numeric-owner --xattrs --xattrs-include='*' -cf "$t" "${@:2}"
        local diff; diff=$(sha256sum "$t" | cut -c1-64)
        pigz -6 -n -c "$t" >"$t.gz"; rm -f "$t"
        local dig; dig=$(sha256sum "$t.gz" | cut -c1-64)
        local size; size=$(stat -c %s "$t.gz")
        mv "$t.gz" "$L/blobs/sha256/$dig"
        echo "$diff $dig $size"
    }
    read -r d1 g1 s1 < <(layer rest --exclude=./usr .)
    read -r d2 g2 s2 < <(layer usr --exclude=./usr/lib ./usr)
    read -r d3 g3 s3 < <(layer usrlib ./usr/lib)
    jq -cn --arg a "sha256:$d1" --arg b "sha256:$d2" --arg c "sha256:$d3" '{architecture:"amd64",os:"linux",
        config:{Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],Cmd:["/usr/bin/python3"]},
        rootfs:{type:"layers",diff_ids:[$a,$b,$c]}}' >"$L/config.json"
    cd_=$(sha256sum "$L/config.json" | cut -c1-64); cs=$(stat -c %s "$L/config.json"); mv "$L/config.json" "$L/blobs/sha256/$cd_"
    lay() { jq -cn --arg d "sha256:$1" --argjson s "$2" '{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$d,size:$s}'; }
    jq -cn --arg cd "sha256:$cd_" --argjson cs "$cs" --argjson l1 "$(lay "$g1" "$s1")" --argjson l2 "$(lay "$g2" "$s2")" \
        --argjson l3 "$(lay "$g3" "$s3")" '{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",
        config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$cd,size:$cs},layers:[$l1,$l2,$l3]}' >"$L/manifest.json"
    md=$(sha256sum "$L/manifest.json" | cut -c1-64); ms=$(stat -c %s "$L/manifest.json"); mv "$L/manifest.json" "$L/blobs/sha256/$md"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
    jq -cn --arg d "sha256:$md" --argjson s "$ms" '{schemaVersion:2,manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",
        digest:$d,size:$s,annotations:{"org.opencontainers.image.ref.name":"bench"}}]}' >"$L/index.json"
    touch "$L/done"
fi

# ---- local registry (loopback, fresh port), push the image
W=$(mktemp -d /var/tmp/contree-bench-run.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$CACHE/registry"
cat >"$W/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $CACHE/registry}}
http: {addr: 127.0.0.1:$PORT, secret: bench}
EOF
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG=$!
cleanup() { kill "$REG" 2>/dev/null || true; wait "$REG" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
REF="127.0.0.1:$PORT/bench:v1"
skopeo --insecure-policy copy -q --preserve-digests --dest-tls-verify=false "oci:$L:bench" "docker://$REF"
COMPRESSED=$(jq '[.layers[].size] | add' "$L/blobs/sha256/$(jq -r '.manifests[0].digest' "$L/index.json" | cut -c8-)")
UNPACKED=$(du -sb --apparent-size "$ROOTFS" | cut -f1)

mvn -q -B test-compile
mvn -q -B dependency:build-classpath -Dmdep.outputFile=target/bench-cp.txt >/dev/null
CP="target/classes:target/test-classes:$(cat target/bench-cp.txt)"

now() { date +%s.%N; }
baseline() {
    rm -rf "$W/oci" "$W/unpacked"; mkdir -p "$W/unpacked"; sync
    local t0; t0=$(now)
    skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REF" "oci:$W/oci:bench"
    local m; m=$(jq -r '.manifests[0].digest' "$W/oci/index.json" | cut -c8-)
    for d in $(jq -r '.layers[].digest' "$W/oci/blobs/sha256/$m" | cut -c8-); do
        tar --numeric-owner -xpzf "$W/oci/blobs/sha256/$d" -C "$W/unpacked"
    done
    sync
    echo "$(now) - $t0" | bc
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "image: 3 gzip layers, $((COMPRESSED / 1000000)) MB compressed, $((UNPACKED / 1000000)) MB unpacked; $ROUNDS rounds; $(nproc) cores" >&2
: >"$W/times"
for r in $(seq "$ROUNDS"); do
    b=$(baseline)
    sync
    out=$("$JAVA_HOME/bin/java" ${BENCH_JAVA_OPTS:-} -cp "$CP" dev.contree.imports.ImportBench "docker://$REF" "$W" 2>"$W/java.log") \
        || { tail -30 "$W/java.log" >&2; exit 1; }
    cold=$(awk '$1=="cold"{print $2}' <<<"$out"); warm=$(awk '$1=="warm"{print $2}' <<<"$out")
    coldjvm=$(awk '$1=="coldjvm"{print $2}' <<<"$out")
    printf 'round %d: baseline %.2f s, cold %.2f s (fresh JVM %.2f s), warm %.3f s\n' "$r" "$b" "$cold" "$coldjvm" "$warm" >&2
    echo "$b $cold $warm $coldjvm" >>"$W/times"
done
med() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
B=$(cut -d' ' -f1 "$W/times" | med); C=$(cut -d' ' -f2 "$W/times" | med); WM=$(cut -d' ' -f3 "$W/times" | med); CJ=$(cut -d' ' -f4 "$W/times" | med)
echo
printf '%-42s %10s %8s\n' "median of $ROUNDS" "seconds" "ratio"
printf '%-42s %10.2f %8s\n' "baseline: skopeo copy + tar -x per layer" "$B" "1.00"
printf '%-42s %10.2f %8.2f   (goal <= 1.30)\n' "ConTree import, cold (warm JIT)" "$C" "$(echo "$C / $B" | bc -l)"
printf '%-42s %10.2f %8.2f\n' "ConTree import, cold, fresh JVM" "$CJ" "$(echo "$CJ / $B" | bc -l)"
printf '%-42s %10.3f %8.3f   (goal < 1 s)\n' "ConTree re-import, warm" "$WM" "$(echo "$WM / $B" | bc -l)"

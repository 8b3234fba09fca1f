#!/usr/bin/env bash
# Builds (once) the bench rootfs: debootstrap --variant=minbase --include=python3 bookworm, cached under
# /var/tmp/contree-bench/rootfs. The mirror comes from the system's apt sources (never hard-coded).
set -euo pipefail
CACHE=${CONTREE_BENCH_CACHE:-/var/tmp/contree-bench}
ROOTFS=$CACHE/rootfs
[ -f "$CACHE/rootfs.done" ] && { echo "$ROOTFS"; exit 0; }
command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # first deb822 stanza with a plain (non-security) Debian suite
        awk 'BEGIN{RS=""} /Types:[^\n]*deb/ && !/security/ { if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s=substr($0,RSTART,RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f"
    done | head -1
    [ -f /etc/apt/sources.list ] && grep -E '^deb[[:space:]]' /etc/apt/sources.list | grep -v security | awk '{for(i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' | head -1
    true
}
MIRROR=$(mirror | head -1)
[ -n "$MIRROR" ] || { echo "no Debian mirror found in /etc/apt/sources.list*" >&2; exit 1; }
rm -rf "$ROOTFS"; mkdir -p "$CACHE"
echo "debootstrap from $MIRROR (cached in $ROOTFS) ..." >&2
debootstrap --variant=minbase --include=python3 bookworm "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb
touch "$CACHE/rootfs.done"
echo "$ROOTFS"

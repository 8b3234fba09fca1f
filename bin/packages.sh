# The Debian packages ConTree needs: one list, sourced by bin/contree and .ci/run.
# Serving: the OCI runtimes, the layer store's btrfs tools, skopeo, gcc to build contree-init, and slirp4netns + nftables
# for --network on (a user-mode uplink per sandbox, the egress policy); qemu-system-x86 (QEMU, virtiofsd) for
# --runtime vm, whose guest kernel the server fetches itself with apt-get download (never installed on the host).
# nodejs (with npm) builds the tree explorer's page into the jar (ui/build.sh); a nodejs that ships its own npm (as
# NodeSource's does) satisfies both, Debian's nodejs needs Debian's npm beside it.
SERVE_PACKAGES=(runc runsc btrfs-progs util-linux e2fsprogs skopeo gcc libc6-dev slirp4netns nftables qemu-system-x86 nodejs)
command -v npm >/dev/null 2>&1 || SERVE_PACKAGES+=(npm)
# Tests on top: busybox for test images, a registry process, htpasswd for its auth, ip for network namespaces,
# PostgreSQL 15's server, which the store tests start in a temp dir (initdb + pg_ctl), and chromium, the headless
# browser the explorer's end-to-end test drives with playwright-core.
TEST_PACKAGES=(busybox-static docker-registry python3 apache2-utils iproute2 postgresql chromium)

# The Debian packages ConTree needs: one list, sourced by bin/contree and .ci/run.
# Serving: the OCI runtimes, the layer store's btrfs tools, skopeo, gcc to build contree-init, and slirp4netns + nftables
# for --network on (a user-mode uplink per sandbox, the egress policy); qemu-system-x86 (QEMU, virtiofsd) for
# --runtime vm, whose guest kernel the server fetches itself with apt-get download (never installed on the host).
SERVE_PACKAGES=(runc runsc btrfs-progs util-linux e2fsprogs skopeo gcc libc6-dev slirp4netns nftables qemu-system-x86)
# Tests on top: busybox for test images, a registry process, htpasswd for its auth, ip for network namespaces,
# PostgreSQL 15's server, which the store tests start in a temp dir (initdb + pg_ctl).
TEST_PACKAGES=(busybox-static docker-registry python3 apache2-utils iproute2 postgresql)

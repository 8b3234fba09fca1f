/*
 * contree-vmboot: /init of a ConTree microVM's initramfs (the vm runtime, see docs/sandbox.md).
 *
 * Static C, PID 1 of the guest kernel until it execs contree-init. It:
 *  1. mounts devtmpfs, proc and sysfs in the initramfs;
 *  2. loads the kernel modules listed in /m/order, in that order (virtio_ring first), passing the kernel
 *     command line's virtio_mmio.device= entries to virtio_mmio (modprobe would; there is no modprobe here);
 *     those of /m/order-net (virtio_net and its chain) only once the boot frame says the VM is networked;
 *  3. mounts the virtiofs tag "rootfs" (the execution's overlay rootfs, served by virtiofsd on the host);
 *  4. opens the virtio-serial port named "contree" (the server's channel) and reads one boot frame from it:
 *     'B' + length (4 bytes big endian) + NUL-terminated strings: hostname, max_tasks (0 = no limit: the
 *     command's processes and threads, on top of the kernel's own), network ("1": the VM has a virtio-net
 *     device behind QEMU's libslirp), argc, contree-init's arguments..., then "K=V" environment entries to the
 *     end of the payload;
 *  4b. brings lo up, and when networked configures eth0 as libslirp expects (10.0.2.15/24, default route via
 *     10.0.2.2; ioctls, no tools in the guest) and binds a read-only resolv.conf naming libslirp's DNS forwarder
 *     (10.0.2.3) over the root's /etc/resolv.conf, as runc/runsc bind the server's (the image's own file stays
 *     as it was underneath; the server removes the mount point it may have had to create);
 *  5. builds the new root's /proc, /sys (read-only), /dev (a small tmpfs with the usual nodes, never devtmpfs:
 *     no virtio port node is reachable), /dev/pts, /dev/shm, empties the initramfs, moves the new root onto /
 *     and chroots into it;
 *  6. drops every capability the OCI runtimes do not grant from the bounding set, and execs contree-init (held
 *     open from the initramfs, so it never appears in the guest's root) with the port as its fd 0 and fd 1.
 *
 * The port is open exactly once (virtio_console refuses a second open with EBUSY while contree-init holds it),
 * and the device node exists only in the initramfs' devtmpfs, which is unmounted before any command runs.
 * Any failure is written to the console (the server keeps a bounded tail of it) and the VM is rebooted, which
 * ends QEMU (-no-reboot): the run fails with that message.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define MAX_BOOT_FRAME (1u << 20)
#define PORT_NAME "contree"

static void fail(const char *fmt, ...) {
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, "contree-vmboot: ", 16);
    (void)!write(2, buf, (size_t)n);
    sync();
    reboot(RB_AUTOBOOT);
    _exit(1);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
    mkdir(dst, 0755); /* a missing mount point in the image: created (it counts as scratch, see SCRATCH_PATHS) */
    if (mount(src, dst, type, flags, data) < 0) fail("mount %s on %s: %s", type, dst, strerror(errno));
}

/* The kernel command line's virtio_mmio.device=... entries, as virtio_mmio's own parameters. */
static void mmio_params(char *out, size_t cap) {
    out[0] = 0;
    char line[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t r = read(fd, line, sizeof line - 1);
    close(fd);
    if (r <= 0) return;
    line[r] = 0;
    size_t used = 0;
    for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
        if (strncmp(tok, "virtio_mmio.", 12)) continue;
        size_t l = strlen(tok + 12);
        if (used + l + 2 >= cap) break;
        if (used) out[used++] = ' ';
        memcpy(out + used, tok + 12, l + 1);
        used += l;
    }
}

/* The modules a list names, in its order; each file is deleted after (load = 0: deleted without loading). */
static void load_modules(const char *list, int load) {
    char params[2048];
    mmio_params(params, sizeof params);
    FILE *f = fopen(list, "re");
    if (!f) fail("no module list %s: %s", list, strerror(errno));
    char name[256];
    while (fgets(name, sizeof name, f)) {
        name[strcspn(name, "\n")] = 0;
        if (!name[0]) continue;
        char path[300];
        snprintf(path, sizeof path, "/m/%s", name);
        if (!load) {
            unlink(path);
            continue;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("module %s: %s", name, strerror(errno));
        const char *p = strstr(name, "virtio_mmio") ? params : "";
        if (syscall(SYS_finit_module, fd, p, 0) < 0 && errno != EEXIST) fail("load %s: %s", name, strerror(errno));
        close(fd);
        unlink(path); /* its memory back: nothing reads it again */
    }
    fclose(f);
    unlink(list);
}

/* /dev/vportNpM whose sysfs name is PORT_NAME; waits for the driver to probe (bounded). */
static int open_port(void) {
    long long give_up = now_ms() + 20000;
    for (;;) {
        DIR *d = opendir("/sys/class/virtio-ports");
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char path[300], nm[64];
                snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0) continue;
                ssize_t r = read(fd, nm, sizeof nm - 1);
                close(fd);
                if (r <= 0) continue;
                nm[r] = 0;
                nm[strcspn(nm, "\n")] = 0;
                if (strcmp(nm, PORT_NAME)) continue;
                snprintf(path, sizeof path, "/dev/%s", e->d_name);
                int port = open(path, O_RDWR | O_CLOEXEC);
                if (port >= 0) {
                    closedir(d);
                    return port;
                }
            }
            closedir(d);
        }
        if (now_ms() > give_up) fail("no virtio port named %s", PORT_NAME);
        usleep(5000);
    }
}

static void read_full(int fd, unsigned char *b, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) fail("the channel ended before the boot frame");
        got += (size_t)r;
    }
}

static void write_file(const char *path, const char *v) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    (void)!write(fd, v, strlen(v));
    close(fd);
}

static void node(const char *path, mode_t mode, unsigned maj, unsigned min) {
    if (mknod(path, S_IFCHR | mode, makedev(maj, min)) < 0) fail("mknod %s: %s", path, strerror(errno));
    chmod(path, mode); /* past the umask */
}

/* The new root's /dev: what the OCI runtimes give a container, nothing of the host's (or the VM's) devices. */
static void make_dev(void) {
    must_mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    node("/newroot/dev/null", 0666, 1, 3);
    node("/newroot/dev/zero", 0666, 1, 5);
    node("/newroot/dev/full", 0666, 1, 7);
    node("/newroot/dev/random", 0666, 1, 8);
    node("/newroot/dev/urandom", 0666, 1, 9);
    node("/newroot/dev/tty", 0666, 5, 0);
    symlink("/proc/self/fd", "/newroot/dev/fd");
    symlink("/proc/self/fd/0", "/newroot/dev/stdin");
    symlink("/proc/self/fd/1", "/newroot/dev/stdout");
    symlink("/proc/self/fd/2", "/newroot/dev/stderr");
    symlink("pts/ptmx", "/newroot/dev/ptmx");
    must_mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    must_mount("shm", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
}

static void if_flags_up(int s, const char *name) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(s, SIOCGIFFLAGS, &r) < 0) fail("%s flags: %s", name, strerror(errno));
    r.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &r) < 0) fail("%s up: %s", name, strerror(errno));
}

static void if_set(int s, const char *name, unsigned long req, const char *ip) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
    struct sockaddr_in *a = (struct sockaddr_in *)&r.ifr_addr;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    if (ioctl(s, req, &r) < 0) fail("%s address %s: %s", name, ip, strerror(errno));
}

/* lo up; networked: eth0 (virtio-net, probed when its module loaded; waited for, bounded) as libslirp's guest. */
static void configure_network(int networked) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) fail("socket: %s", strerror(errno));
    if_flags_up(s, "lo");
    if (networked) {
        long long give_up = now_ms() + 20000;
        while (!if_nametoindex("eth0")) {
            if (now_ms() > give_up) fail("no eth0: the virtio-net device did not appear");
            usleep(2000);
        }
        if_set(s, "eth0", SIOCSIFADDR, "10.0.2.15");
        if_set(s, "eth0", SIOCSIFNETMASK, "255.255.255.0");
        if_flags_up(s, "eth0");
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst, *gw = (struct sockaddr_in *)&rt.rt_gateway,
                           *mask = (struct sockaddr_in *)&rt.rt_genmask;
        dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
        inet_pton(AF_INET, "10.0.2.2", &gw->sin_addr);
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = "eth0";
        if (ioctl(s, SIOCADDRT, &rt) < 0) fail("default route: %s", strerror(errno));
    }
    close(s);
}

/* The guest's resolv.conf, in the initramfs (unreachable from the new root but through the returned O_PATH fd). */
static int resolv_conf_source(void) {
    static const char text[] = "nameserver 10.0.2.3\n";
    int fd = open("/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0 || write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) fail("resolv.conf: %s", strerror(errno));
    close(fd);
    fd = open("/resolv.conf", O_PATH | O_CLOEXEC);
    if (fd < 0) fail("resolv.conf: %s", strerror(errno));
    return fd;
}

/* After the chroot: binds it read-only over /etc/resolv.conf (a file the server made real: no symlink). */
static void bind_resolv_conf(int src) {
    mkdir("/etc", 0755); /* missing in the image: created, as runc would */
    int t = open("/etc/resolv.conf", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (t < 0) fail("/etc/resolv.conf: %s", strerror(errno));
    close(t);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", src);
    if (mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0) fail("bind resolv.conf: %s", strerror(errno));
    if (mount(NULL, "/etc/resolv.conf", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail("resolv.conf read-only: %s", strerror(errno));
    close(src);
}

/* Keeps the capabilities docker/runc give a container (OciSpecs.CAPS) in the bounding set, drops the rest. */
static void drop_caps(void) {
    static const int keep[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_SETGID,
                               CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                               CAP_KILL, CAP_AUDIT_WRITE};
    for (int c = 0; c <= 63; c++) {
        int k = 0;
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) k |= keep[i] == c;
        if (k) continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL) break; /* past the last capability */
    }
}

int main(void) {
    if (getpid() != 1) { fprintf(stderr, "contree-vmboot: must be the guest's PID 1\n"); return 1; }
    umask(022);
    mkdir("/dev", 0755);
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    load_modules("/m/order", 1);

    must_mount("rootfs", "/newroot", "virtiofs", 0, NULL);
    int port = open_port();
    unsigned char hdr[5];
    read_full(port, hdr, 5);
    uint32_t len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
    if (hdr[0] != 'B' || len == 0 || len > MAX_BOOT_FRAME) fail("bad boot frame");
    char *pl = malloc(len + 1);
    if (!pl) fail("out of memory");
    read_full(port, (unsigned char *)pl, len);
    pl[len] = 0;
    /* Split into NUL-terminated strings. */
    size_t count = 0;
    for (size_t off = 0; off < len; off += strlen(pl + off) + 1) count++;
    char **parts = calloc(count + 1, sizeof *parts);
    if (!parts) fail("out of memory");
    int np = 0;
    for (size_t off = 0; off < len; off += strlen(pl + off) + 1) parts[np++] = pl + off;
    if (np < 4) fail("short boot frame");
    const char *hostname = parts[0];
    const char *max_tasks = parts[1];
    int networked = !strcmp(parts[2], "1");
    long argc = strtol(parts[3], NULL, 10);
    if (argc < 1 || argc > np - 4) fail("bad argc in boot frame");
    char **argv = calloc((size_t)argc + 2, sizeof *argv);
    argv[0] = "/.contree/init";
    for (long i = 0; i < argc; i++) argv[i + 1] = parts[4 + i];
    int nenv = np - 4 - (int)argc;
    char **envp = calloc((size_t)nenv + 1, sizeof *envp);
    for (int i = 0; i < nenv; i++) envp[i] = parts[4 + argc + i];
    load_modules("/m/order-net", networked); /* virtio_net only where there is a device for it */
    configure_network(networked);
    int resolv = networked ? resolv_conf_source() : -1;

    if (sethostname(hostname, strlen(hostname)) < 0) fail("sethostname: %s", strerror(errno));
    /* The pids limit: every task of the guest counts, its kernel threads too (they exist already). */
    long limit = strtol(max_tasks, NULL, 10);
    if (limit > 0) {
        /* threads-max counts every task: the kernel threads that exist now come on top of the limit. */
        char la[128] = {0}, v[32];
        int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        long total = 0;
        if (fd >= 0) {
            if (read(fd, la, sizeof la - 1) > 0) {
                char *slash = strchr(la, '/');
                if (slash) total = strtol(slash + 1, NULL, 10);
            }
            close(fd);
        }
        snprintf(v, sizeof v, "%ld", total + limit);
        write_file("/proc/sys/kernel/threads-max", v);
    }

    int init = open("/contree-init", O_RDONLY | O_CLOEXEC);
    if (init < 0) fail("contree-init: %s", strerror(errno));

    must_mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    must_mount("sysfs", "/newroot/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
    make_dev();

    /* Leave nothing of the initramfs reachable: its devtmpfs (the port's node), proc, sysfs, files. */
    umount2("/dev", MNT_DETACH);
    umount2("/proc", MNT_DETACH);
    umount2("/sys", MNT_DETACH);
    unlink("/contree-init");
    unlink("/init");
    rmdir("/m");

    if (chdir("/newroot") < 0) fail("chdir: %s", strerror(errno));
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0) fail("move root: %s", strerror(errno));
    if (chroot(".") < 0) fail("chroot: %s", strerror(errno));
    if (chdir("/") < 0) fail("chdir /: %s", strerror(errno));
    if (resolv >= 0) bind_resolv_conf(resolv);

    if (dup2(port, 0) < 0 || dup2(port, 1) < 0) fail("dup2: %s", strerror(errno));
    close(port);
    drop_caps();
    syscall(SYS_execveat, init, "", argv, envp, AT_EMPTY_PATH);
    fail("exec contree-init: %s", strerror(errno));
    return 1;
}

/*
 * Escape-suite probe: one static binary injected into a sandbox. Each subcommand tries one privileged
 * operation directly with the syscall (no libc wrappers that might hide the errno) and prints
 * "OK" if the kernel (or gVisor) allowed it, else "ERR <errno name>". Exit code 0 either way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

static int report(long rc) {
    if (rc < 0) printf("ERR %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
    else printf("OK\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *c = argv[1];
    if (!strcmp(c, "setxattr") && argc == 5)      /* PATH NAME VALUE */
        return report(lsetxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0));
    if (!strcmp(c, "ptrace") && argc == 3)        /* PID */
        return report(ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0));
    if (!strcmp(c, "init_module")) {
        static char junk[4096] = "\177ELF junk";
        return report(syscall(SYS_init_module, junk, sizeof junk, ""));
    }
    if (!strcmp(c, "finit_module") && argc == 3) {
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return report(-1);
        return report(syscall(SYS_finit_module, fd, "", 0));
    }
    if (!strcmp(c, "raw"))
        return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (!strcmp(c, "packet"))
        return report(socket(AF_PACKET, SOCK_RAW, htons(3)));
    if (!strcmp(c, "connect") && argc == 4) {     /* IP PORT: TCP connect, 3 s */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s < 0) return report(-1);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return report(0);
        if (errno != EINPROGRESS) return report(-1);
        struct pollfd p = {.fd = s, .events = POLLOUT};
        if (poll(&p, 1, 3000) <= 0) { printf("ERR TIMEOUT\n"); return 0; }
        int err = 0; socklen_t l = sizeof err;
        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { errno = err; return report(-1); }
        return report(0);
    }
    if (!strcmp(c, "udp") && argc == 4) {         /* IP PORT: one datagram */
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        if (s < 0) return report(-1);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        return report(sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(c, "userns"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(c, "netns"))
        return report(unshare(CLONE_NEWNET));
    if (!strcmp(c, "mount"))                      /* TARGET */
        return report(mount("none", argc > 2 ? argv[2] : "/mnt", "tmpfs", 0, ""));
    if (!strcmp(c, "remount-init"))
        return report(mount(NULL, "/.contree/init", NULL, MS_REMOUNT | MS_BIND, NULL));
    if (!strcmp(c, "settimeofday")) {
        struct timeval tv = {.tv_sec = 946684800};   /* 2000-01-01 */
        return report(settimeofday(&tv, NULL));
    }
    if (!strcmp(c, "clock_settime")) {
        struct timespec ts = {.tv_sec = 946684800};
        return report(clock_settime(CLOCK_REALTIME, &ts));
    }
    if (!strcmp(c, "sethostname") && argc == 3)
        return report(sethostname(argv[2], strlen(argv[2])));
    if (!strcmp(c, "open_by_handle")) {            /* the "shocker" escape: handle of the host's root inode */
        struct { unsigned int bytes; int type; unsigned char h[8]; } fh = {8, 1, {2, 0, 0, 0, 0, 0, 0, 0}};
        int fd = open("/", O_RDONLY);
        return report(syscall(SYS_open_by_handle_at, fd, &fh, O_RDONLY));
    }
    if (!strcmp(c, "readdev") && argc == 3) {      /* open + read 512 bytes of a device node */
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return report(-1);
        char b[512];
        return report(read(fd, b, sizeof b) > 0 ? 0 : -1);
    }
    if (!strcmp(c, "writefile") && argc == 4) {    /* PATH TEXT: open O_WRONLY (no create) and write */
        int fd = open(argv[2], O_WRONLY);
        if (fd < 0) return report(-1);
        return report(write(fd, argv[3], strlen(argv[3])) == (ssize_t) strlen(argv[3]) ? 0 : -1);
    }
    if (!strcmp(c, "keyctl"))
        return report(syscall(SYS_add_key, "user", "contree", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
    if (!strcmp(c, "bpf"))
        return report(syscall(SYS_bpf, 0, NULL, 0));
    if (!strcmp(c, "chroot-escape") && argc == 3) { /* the classic double-chroot climb, then open PATH */
        mkdir("/.chr", 0755);
        if (chroot("/.chr")) return report(-1);
        for (int i = 0; i < 64; i++) if (chdir("..")) break;
        if (chroot(".")) return report(-1);
        int fd = open(argv[2], O_RDONLY);
        if (fd < 0) return report(-1);
        char b[128];
        ssize_t n = read(fd, b, sizeof b - 1);
        b[n > 0 ? n : 0] = 0;
        printf("OK %s\n", b);
        return 0;
    }
    fprintf(stderr, "unknown probe %s\n", c);
    return 2;
}

/*
 * hostile: attacks a sandboxed command makes on its own sandbox's control plane (contree-init's report
 * channel, PID 1 itself) and on the kernel's socket families. Each subcommand prints one line and exits 0;
 * the tests read the line.
 *
 *   hostile forge PATH        write a forged 'R' result frame (and an 'O' frame) to PATH, e.g. /proc/1/fd/1
 *   hostile open PATH MODE    open PATH (r|w|rw): "OPEN ok" or "OPEN err ERRNO"
 *   hostile kill1 SIG         kill(1, SIG): "KILL ok" or "KILL err ERRNO"
 *   hostile socket FAMILY TYPE PROTO   socket(): "SOCKET ok" or "SOCKET err ERRNO"
 *   hostile ptrace1           PTRACE_ATTACH to PID 1: "PTRACE ok" or "PTRACE err ERRNO"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <unistd.h>

static void frame(int fd, char type, const char *payload) {
    uint32_t len = (uint32_t)strlen(payload);
    unsigned char hdr[5] = {(unsigned char)type, len >> 24, len >> 16, len >> 8, len};
    char buf[4096];
    memcpy(buf, hdr, 5);
    memcpy(buf + 5, payload, len);
    (void)!write(fd, buf, 5 + len); /* one write: atomic on a pipe */
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "forge") && argc == 3) {
        int fd = open(argv[2], O_WRONLY);
        if (fd < 0) { printf("FORGE err %d\n", errno); return 0; }
        frame(fd, 'O', "FORGED-STDOUT\n");
        frame(fd, 'R', "version=1\npid=1\nexit_code=123\nsignal=-1\ntimed_out=0\ncore_dump=0\nkilled_by=0\n"
                       "elapsed_ns=1000\ninit_ns=1\nutime_us=31536000000000\nstime_us=0\nmaxrss_kb=1048576\n");
        printf("FORGE ok\n");
        return 0;
    }
    if (!strcmp(argv[1], "open") && argc == 4) {
        int flags = !strcmp(argv[3], "r") ? O_RDONLY : !strcmp(argv[3], "w") ? O_WRONLY : O_RDWR;
        int fd = open(argv[2], flags);
        if (fd < 0) printf("OPEN err %d\n", errno);
        else {
            char b[64];
            ssize_t n = flags == O_WRONLY ? 0 : read(fd, b, sizeof b);
            printf("OPEN ok %zd\n", n);
        }
        return 0;
    }
    if (!strcmp(argv[1], "kill1") && argc == 3) {
        if (kill(1, atoi(argv[2])) < 0) printf("KILL err %d\n", errno);
        else printf("KILL ok\n");
        return 0;
    }
    if (!strcmp(argv[1], "socket") && argc == 5) {
        int fd = socket(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
        if (fd < 0) printf("SOCKET err %d\n", errno);
        else printf("SOCKET ok\n");
        return 0;
    }
    if (!strcmp(argv[1], "ptrace1")) {
        if (ptrace(PTRACE_ATTACH, 1, 0, 0) < 0) printf("PTRACE err %d\n", errno);
        else printf("PTRACE ok\n");
        return 0;
    }
    return 2;
}

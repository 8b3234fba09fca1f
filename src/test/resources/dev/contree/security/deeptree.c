/* deeptree make N | deeptree read N: makes (or walks) N nested directories "d" below the cwd, one name at a
 * time through directory descriptors (a shell's cd builds ever longer paths), then writes (or prints) "f". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int make = strcmp(argv[1], "make") == 0;
    long n = atol(argv[2]);
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    for (long i = 0; i < n; i++) {
        if (make && mkdirat(fd, "d", 0755) != 0) { perror("mkdirat"); return 1; }
        int next = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (next < 0) { perror("openat"); return 1; }
        close(fd);
        fd = next;
    }
    if (make) {
        int f = openat(fd, "f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (f < 0 || write(f, "deep\n", 5) != 5) { perror("f"); return 1; }
        close(f);
    } else {
        char buf[64];
        int f = openat(fd, "f", O_RDONLY);
        ssize_t r = f < 0 ? -1 : read(f, buf, sizeof buf);
        if (r < 0) { perror("f"); return 1; }
        fwrite(buf, 1, r, stdout);
    }
    return 0;
}

/*
 * contree-init: PID 1 of every ConTree sandbox.
 *
 * Static C, no dependency on the image's libc. Bind-mounted read-only at
 * /.contree/init. The server passes the command spec on the command line and
 * the command's environment as init's own environment (OCI process.env):
 *
 *   /.contree/init [-t TIMEOUT_MS] [-u UID] [-g GID] [-c CWD] [-p] [-m] -- ARGV...
 *     -p  look ARGV[0] up in PATH (execvp-style) when it contains no '/'
 *     -m  create CWD (mkdir -p, as root, mode 0755) when it is missing
 *
 * stdin (fd 0) starts with a line init reads before it starts anything: a
 * per-run token of TOKEN_LEN hex digits and '\n'. The rest of stdin is passed
 * straight to the command. The command's stdout and
 * stderr are pipes owned by init; init relays them, together with control
 * records, over its own fd 1 as frames:
 *
 *   [type: 1 byte][length: 4 bytes big endian][payload]
 *   'O' stdout bytes   'E' stderr bytes
 *   'S' started: "token=T\npid=N\n"
 *   'R' result: "token=T\n" then "key=value\n" lines (always the last frame)
 *
 * Nothing in the sandbox but init can write to fd 1, so a command cannot forge
 * a result: init makes itself non-dumpable before anything else runs, so
 * /proc/1/fd, /proc/1/mem, /proc/1/environ and friends need CAP_SYS_PTRACE,
 * which no sandbox has. gVisor does not apply dumpability to /proc/1/fd (its
 * mem and ptrace checks do honour it), so the token is what proves a control
 * frame is init's there: it is read from stdin before the command exists and
 * kept only in init's memory, and the server believes only frames that start
 * with it. init's fd 2 carries only init's own fatal diagnostics.
 *
 * Signals: only a sender outside the sandbox (the runtime, ssi_pid 0) can ask
 * init to stop the command; a sandboxed root's kill(1, SIGTERM) is ignored
 * (it could otherwise make init report killed_by for a command it killed).
 *
 * init: runs the command in a new session with the requested identity,
 * reaps every process (it is PID 1, orphans are re-parented to it), enforces
 * the timeout with SIGKILL to every process (kill(-1)), and when the main
 * process ends kills whatever is left, drains the pipes and reports exit code,
 * signal, timed_out, core_dump, pid, wait4 rusage and elapsed wall time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define BUF_SIZE 65536
#define TOKEN_LEN 32

static void die(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, "contree-init: ", 14);
    (void)!write(2, buf, n);
    _exit(120);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = fd, .events = POLLOUT};
                poll(&pf, 1, 100);
                continue;
            }
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int out_broken; /* server went away: keep running, stop writing */

static void frame(char type, const void *payload, uint32_t len) {
    if (out_broken) return;
    unsigned char hdr[5] = {(unsigned char)type, (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                            (unsigned char)(len >> 8), (unsigned char)len};
    if (write_all(1, hdr, 5) < 0 || (len && write_all(1, payload, len) < 0)) out_broken = 1;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long parse_long(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) die("bad %s: %s", what, s);
    return v;
}

static int mkdir_p(const char *path) {
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
    return 0;
}

/* Child side: report a setup failure through the CLOEXEC error pipe and exit. */
static void child_fail(int errfd, int code, const char *what, const char *arg, int err) {
    char msg[PATH_MAX + 256];
    int n = snprintf(msg, sizeof msg, "%d %s %s: %s", code, what, arg ? arg : "", strerror(err));
    if (n > (int)sizeof msg - 1) n = sizeof msg - 1;
    (void)!write(errfd, msg, (size_t)n);
    _exit(code);
}

static void exec_command(char **argv, int lookup, int errfd) {
    extern char **environ;
    const char *file = argv[0];
    if (!lookup || strchr(file, '/')) {
        execve(file, argv, environ);
        child_fail(errfd, errno == ENOENT ? 127 : 126, "exec", file, errno);
    }
    const char *path = getenv("PATH");
    if (!path || !*path) path = DEFAULT_PATH;
    int saw_eacces = 0, last = ENOENT;
    size_t flen = strlen(file);
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        char full[PATH_MAX];
        if (dlen + flen + 2 <= sizeof full) {
            if (dlen == 0) {
                memcpy(full, file, flen + 1); /* empty entry = cwd */
            } else {
                memcpy(full, p, dlen);
                full[dlen] = '/';
                memcpy(full + dlen + 1, file, flen + 1);
            }
            execve(full, argv, environ);
            if (errno == EACCES) saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR) last = errno;
        }
        if (!colon) break;
        p = colon + 1;
    }
    if (saw_eacces) last = EACCES;
    child_fail(errfd, last == ENOENT ? 127 : 126, "exec", file, last);
}

static void kill_all(void) {
    /* As PID 1 of the namespace, kill(-1) hits every other process in it. */
    kill(-1, SIGKILL);
}

int main(int argc, char **argv) {
    long long t0 = now_ns();
    /* First: close /proc/1/{fd,mem,environ,...} to the command (see the header). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
    char token[TOKEN_LEN + 2];
    for (size_t got = 0; got < TOKEN_LEN + 1;) {
        ssize_t r = read(0, token + got, TOKEN_LEN + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) die("stdin ended before the run token");
        got += (size_t)r;
    }
    if (token[TOKEN_LEN] != '\n') die("malformed run token");
    token[TOKEN_LEN] = 0;
    long timeout_ms = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    const char *cwd = NULL;
    int lookup = 0, mkcwd = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { i++; break; }
        if (!strcmp(a, "-p")) { lookup = 1; continue; }
        if (!strcmp(a, "-m")) { mkcwd = 1; continue; }
        if (i + 1 >= argc) die("missing value for %s", a);
        if (!strcmp(a, "-t")) timeout_ms = parse_long(argv[++i], "timeout");
        else if (!strcmp(a, "-u")) uid = (uid_t)parse_long(argv[++i], "uid");
        else if (!strcmp(a, "-g")) gid = (gid_t)parse_long(argv[++i], "gid");
        else if (!strcmp(a, "-c")) cwd = argv[++i];
        else die("unknown option %s", a);
    }
    if (i >= argc) die("no command");
    char **cmd = argv + i;
    if (getpid() != 1) die("must run as PID 1 (kill(-1) would hit the host)");

    /* init's signals: all handled synchronously through a signalfd. */
    sigset_t mask, oldmask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0) die("sigprocmask: %s", strerror(errno));
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) die("signalfd: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    int outp[2], errp[2], ep[2];
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0)
        die("pipe: %s", strerror(errno));

    if (cwd && mkcwd) {
        struct stat st;
        if (stat(cwd, &st) < 0 && errno == ENOENT) mkdir_p(cwd); /* failure shows up as chdir error */
    }

    long long start_ns = now_ns();
    pid_t pid = fork();
    if (pid < 0) die("fork: %s", strerror(errno));
    if (pid == 0) {
        close(ep[0]);
        close(sfd);
        if (dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0) child_fail(ep[1], 125, "dup2", "", errno);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        setsid();
        int oa = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (oa >= 0) { (void)!write(oa, "0", 1); close(oa); }
        if (setgroups(1, &gid) < 0 && errno != EPERM) child_fail(ep[1], 125, "setgroups", "", errno);
        if (setgid(gid) < 0) child_fail(ep[1], 125, "setgid", "", errno);
        if (setuid(uid) < 0) child_fail(ep[1], 125, "setuid", "", errno);
        if (cwd && chdir(cwd) < 0) child_fail(ep[1], 125, "chdir", cwd, errno);
        exec_command(cmd, lookup, ep[1]);
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    close(ep[1]);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);

    {
        char s[96];
        int n = snprintf(s, sizeof s, "token=%s\npid=%d\n", token, (int)pid);
        frame('S', s, (uint32_t)n);
    }

    long long deadline = timeout_ms > 0 ? start_ns + (long long)timeout_ms * 1000000LL : 0;
    int main_done = 0, timed_out = 0, wstatus = 0, killed_by = 0;
    long long end_ns = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    char errmsg[PATH_MAX + 256];
    size_t errlen = 0;
    int err_open = 1, out_open = 1, serr_open = 1;
    long long drain_deadline = 0;
    static char buf[BUF_SIZE];

    for (;;) {
        /* Reap everything that has exited. */
        for (;;) {
            int st;
            struct rusage r;
            pid_t w = wait4(-1, &st, WNOHANG, &r);
            if (w <= 0) break;
            if (w == pid && !main_done) {
                main_done = 1;
                wstatus = st;
                ru = r;
                end_ns = now_ns();
            }
        }
        if (main_done && !drain_deadline) {
            /* Main process gone: nothing else may outlive it. */
            kill_all();
            drain_deadline = now_ns() + 2000000000LL;
        }
        if (main_done) {
            kill_all(); /* also catches processes forked during the previous kill */
            errno = 0;
            int st;
            pid_t w = waitpid(-1, &st, WNOHANG);
            int no_children = (w < 0 && errno == ECHILD);
            if (no_children && !out_open && !serr_open) break;
            if (no_children && now_ns() > drain_deadline) break; /* pipe held by nobody we know: give up */
        }

        struct pollfd pfd[4];
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        int io = n, ie = -1, iep = -1;
        if (out_open) pfd[n++] = (struct pollfd){.fd = outp[0], .events = POLLIN};
        else io = -1;
        if (serr_open) { ie = n; pfd[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN}; }
        if (err_open) { iep = n; pfd[n++] = (struct pollfd){.fd = ep[0], .events = POLLIN}; }

        int wait_ms = -1;
        long long now = now_ns();
        if (main_done) wait_ms = 50;
        else if (deadline && !timed_out) {
            long long left = deadline - now;
            if (left <= 0) {
                timed_out = 1;
                kill_all();
                continue;
            }
            wait_ms = (int)((left + 999999) / 1000000);
        } else if (timed_out) wait_ms = 50; /* keep killing until the main process is reaped */
        if (timed_out && !main_done) kill_all();

        int pr = poll(pfd, (nfds_t)n, wait_ms);
        if (pr < 0 && errno != EINTR) die("poll: %s", strerror(errno));
        if (pr <= 0) continue;

        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == sizeof si) {
                /* ssi_pid != 0: the sender is a process of this sandbox, not the runtime. */
                if (si.ssi_signo != SIGCHLD && !main_done && si.ssi_pid == 0) {
                    /* Asked to stop (e.g. `runc kill TERM`): kill the tree, report it. */
                    killed_by = (int)si.ssi_signo;
                    kill_all();
                }
            }
        }
        for (int k = 0; k < 2; k++) {
            int idx = k == 0 ? io : ie;
            if (idx < 0 || !(pfd[idx].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int fd = k == 0 ? outp[0] : errp[0];
            for (int rounds = 0; rounds < 16; rounds++) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    frame(k == 0 ? 'O' : 'E', buf, (uint32_t)r);
                    continue;
                }
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    if (k == 0) out_open = 0; else serr_open = 0;
                    close(fd);
                }
                break;
            }
        }
        if (iep >= 0 && (pfd[iep].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(ep[0], errmsg + errlen, sizeof errmsg - 1 - errlen);
            if (r > 0) errlen += (size_t)r;
            else { err_open = 0; close(ep[0]); }
        }
    }

    /* Final drain of anything left in the pipes (non-blocking). */
    for (int k = 0; k < 2; k++) {
        if (k == 0 ? !out_open : !serr_open) continue;
        int fd = k == 0 ? outp[0] : errp[0];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) frame(k == 0 ? 'O' : 'E', buf, (uint32_t)r);
    }
    if (err_open) {
        ssize_t r;
        while (errlen < sizeof errmsg - 1 && (r = read(ep[0], errmsg + errlen, sizeof errmsg - 1 - errlen)) > 0)
            errlen += (size_t)r;
    }
    errmsg[errlen] = 0;

    char res[2048];
    int exit_code = -1, sig = -1, core = 0;
    if (WIFEXITED(wstatus)) exit_code = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus)) {
        sig = WTERMSIG(wstatus);
        core = WCOREDUMP(wstatus) ? 1 : 0;
    }
    int len = snprintf(res, sizeof res,
                       "token=%s\nversion=1\npid=%d\nexit_code=%d\nsignal=%d\ntimed_out=%d\ncore_dump=%d\nkilled_by=%d\n"
                       "elapsed_ns=%lld\ninit_ns=%lld\n"
                       "utime_us=%lld\nstime_us=%lld\nmaxrss_kb=%ld\nminflt=%ld\nmajflt=%ld\n"
                       "inblock=%ld\noublock=%ld\nnvcsw=%ld\nnivcsw=%ld\nnsignals=%ld\nnswap=%ld\n"
                       "ixrss=%ld\nidrss=%ld\nmsgsnd=%ld\nmsgrcv=%ld\n",
                       token, (int)pid, exit_code, sig, timed_out, core, killed_by, (end_ns ? end_ns : now_ns()) - start_ns,
                       start_ns - t0, (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec,
                       (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec, ru.ru_maxrss, ru.ru_minflt,
                       ru.ru_majflt, ru.ru_inblock, ru.ru_oublock, ru.ru_nvcsw, ru.ru_nivcsw, ru.ru_nsignals,
                       ru.ru_nswap, ru.ru_ixrss, ru.ru_idrss, ru.ru_msgsnd, ru.ru_msgrcv);
    /* cgroup figures, when the runtime exposes the container's cgroup read-only. */
    static const char *cg[][2] = {
        {"cg_mem_max_usage", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"},
        {"cg_mem_failcnt", "/sys/fs/cgroup/memory/memory.failcnt"},
        {"cg_cpu_usage_ns", "/sys/fs/cgroup/cpuacct/cpuacct.usage"},
        {"cg_pids_max_hit", "/sys/fs/cgroup/pids/pids.events"},
        {"cg_oom_kills", "/sys/fs/cgroup/memory/memory.oom_control"},
    };
    for (size_t k = 0; k < sizeof cg / sizeof cg[0] && len < (int)sizeof res - 128; k++) {
        int fd = open(cg[k][1], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        char v[256];
        ssize_t r = read(fd, v, sizeof v - 1);
        close(fd);
        if (r <= 0) continue;
        v[r] = 0;
        char *num = v;
        if (!strncmp(v, "max ", 4)) num = v + 4; /* pids.events: "max N" */
        char *ok = strstr(v, "oom_kill "); /* memory.oom_control: "... oom_kill N" */
        if (ok) num = ok + 9;
        else if (strstr(v, "oom_kill_disable")) continue;
        num[strcspn(num, "\n")] = 0;
        len += snprintf(res + len, sizeof res - (size_t)len, "%s=%s\n", cg[k][0], num);
    }
    if (errlen) {
        /* "CODE what arg: strerror" from the child */
        char *msg = strchr(errmsg, ' ');
        msg = msg ? msg + 1 : errmsg;
        for (char *c = msg; *c; c++) if (*c == '\n') *c = ' ';
        if (len < (int)sizeof res - 1)
            len += snprintf(res + len, sizeof res - (size_t)len, "error=%s\n", msg);
        char line[PATH_MAX + 300];
        int ln = snprintf(line, sizeof line, "contree-init: %s\n", msg);
        if (ln > (int)sizeof line - 1) ln = sizeof line - 1;
        frame('E', line, (uint32_t)ln);
    }
    if (len > (int)sizeof res - 1) len = sizeof res - 1;
    frame('R', res, (uint32_t)len);
    return 0;
}

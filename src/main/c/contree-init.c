/*
 * contree-init: PID 1 of every ConTree sandbox (protocol version 2).
 *
 * Static C, no dependency on the image's libc. Bind-mounted read-only at
 * /.contree/init. The server passes the main command's spec on the command
 * line and its environment as init's own environment (OCI process.env):
 *
 *   /.contree/init [-t TIMEOUT_MS] [-u UID] [-g GID] [-c CWD] [-p] [-m] -- ARGV...
 *     -p  look ARGV[0] up in PATH (execvp-style) when it contains no '/'
 *     -m  create CWD (mkdir -p, as root, mode 0755) when it is missing
 *     -V  PID 1 of a microVM (the vm runtime, started by contree-vmboot): sync() before the last 'R', then wait
 *         (bounded) for the server to stop the VM instead of exiting (which would panic the guest kernel)
 *
 * Every frame, both ways: [type: 1 byte][length: 4 bytes big endian][payload];
 * spid fields are 4 bytes big endian. spid 1 is the main command, spids >= 2
 * are subprocesses the server asks init to start while the main one runs.
 *
 * fd 0 (server -> init) starts with a line init reads before it starts
 * anything: a per-run token of TOKEN_LEN hex digits and '\n'. Then frames:
 *   'I' spid + stdin bytes (<= 64 KiB)   'C' spid: close that stdin
 *   'X' spid + NUL-terminated uid, gid, timeout_ms, lookup_path, cwd, argc,
 *       argv..., then "K=V" env entries to the end (payload <= 1 MiB): spawn
 *   'K' spid + signo: kill(pid of spid, signo)
 * EOF on fd 0 closes every stdin still open. A malformed frame ends control
 * for good (what follows is read and dropped, every stdin is closed, the
 * processes run on and are reported) with one line on fd 2.
 *
 * fd 1 (init -> server):
 *   'O' / 'E' spid + stdout / stderr bytes
 *   'A' spid + count: that many of spid's 'I' bytes were written to its stdin,
 *       or dropped (stdin closed or broken; beyond PENDING_CAP held)
 *   'S' "token=T\nspid=N\npid=P\n"
 *   'R' "token=T\nversion=2\nspid=N\n" then key=value lines: exactly one per
 *       spawn request, refused ones included (exit_code=-1, signal=-1,
 *       error=...), and the main command's is always the last frame.
 * Every process's stdin, stdout and stderr are pipes owned by init, which never
 * blocks on a process's stdin (pending bytes wait for POLLOUT), so a process
 * that does not read never delays another spid's control frames.
 *
 * Nothing in the sandbox but init can write to fd 1, so a command cannot forge
 * a result: init makes itself non-dumpable before anything else runs, so
 * /proc/1/fd, /proc/1/mem, /proc/1/environ and friends need CAP_SYS_PTRACE,
 * which no sandbox has. gVisor does not apply dumpability to /proc/1/fd for
 * root (its mem and ptrace checks do honour it), so the token is what proves a
 * control frame is init's there: it is read from fd 0 before any command exists
 * and kept only in init's memory, and the server believes only frames that
 * start with it. There a sandboxed root can also read fd 0 (steal control
 * bytes: it spoils its own run's control; what it writes there does not reach
 * init) and open init's pipes: so the exec-error pipe is closed as soon as the
 * exec succeeded, and its message is believed only from a child that exited
 * with a setup code (125-127). init's fd 2 carries only init's diagnostics.
 *
 * Signals: only a sender outside the sandbox (the runtime, ssi_pid 0) can ask
 * init to stop the command; a sandboxed root's kill(1, SIGTERM) is ignored
 * (it could otherwise make init report killed_by for a command it killed).
 *
 * Processes: each runs in a new session with the requested identity, cwd and
 * environment. A subprocess's timeout SIGKILLs its process group; the main
 * command's timeout SIGKILLs every process (kill(-1)). A subprocess reaped
 * (wait4: its own rusage) has what its pipes hold read, init's ends closed and
 * its 'R' sent. When the main process ends, init kills whatever is left,
 * reports every subprocess not yet reported, drains the main pipes and reports
 * the main command last: exit code, signal, timed_out, core_dump, pid, wait4
 * rusage, elapsed wall time and the cgroup's figures.
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
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define BUF_SIZE 65536
#define TOKEN_LEN 32
#define MAX_SUBS 64                      /* live subprocesses */
#define SLOTS (MAX_SUBS + 1)             /* slot 0: the main command */
#define MAX_STDIN_FRAME (4 + 65536)      /* 'I' payload */
#define MAX_SPAWN_FRAME (1u << 20)       /* 'X' payload */
#define PENDING_CAP (4u << 20)           /* stdin bytes held per spid; more is dropped (the server sends <= 1 MiB) */
#define CTL_CAP (5 + MAX_SPAWN_FRAME + BUF_SIZE)

static char token[TOKEN_LEN + 2];

static void diag(const char *fmt, va_list ap) {
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)!write(2, "contree-init: ", 14);
    (void)!write(2, buf, n);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag(fmt, ap);
    va_end(ap);
    _exit(120);
}

static void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag(fmt, ap);
    va_end(ap);
}

static int out_broken; /* server went away: keep running, stop writing */

/* Writes all of iov to fd 1 (blocking on EAGAIN with poll); sets out_broken on error. */
static void write_out(struct iovec *iov, int cnt) {
    while (cnt > 0 && !out_broken) {
        ssize_t w = writev(1, iov, cnt);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {.fd = 1, .events = POLLOUT};
                poll(&pf, 1, 100);
                continue;
            }
            out_broken = 1;
            return;
        }
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A text control frame ('S', 'R'): header + payload in one writev. */
static void frame(char type, const void *payload, uint32_t len) {
    unsigned char hdr[5];
    hdr[0] = (unsigned char)type;
    put32(hdr + 1, len);
    struct iovec iov[2] = {{hdr, 5}, {(void *)payload, len}};
    write_out(iov, len ? 2 : 1);
}

/* A frame whose payload starts with a spid ('O', 'E', 'A'). */
static void frame_spid(char type, uint32_t spid, const void *data, uint32_t len) {
    unsigned char hdr[9];
    hdr[0] = (unsigned char)type;
    put32(hdr + 1, len + 4);
    put32(hdr + 5, spid);
    struct iovec iov[2] = {{hdr, 9}, {(void *)data, len}};
    write_out(iov, len ? 2 : 1);
}

static void credit(uint32_t spid, uint32_t count) {
    if (count == 0) return;
    unsigned char c[4];
    put32(c, count);
    frame_spid('A', spid, c, 4);
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

/* Decimal in [0, max]; -1 if it is not one. */
static long long parse_num(const char *s, long long max) {
    if (!*s || strlen(s) > 19) return -1;
    long long v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return -1;
        v = v * 10 + (*c - '0');
        if (v > max) return -1;
    }
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

static void ensure_cwd(const char *cwd) {
    struct stat st;
    if (stat(cwd, &st) < 0 && errno == ENOENT) mkdir_p(cwd); /* failure shows up as chdir error */
}

/* Child side: report a setup failure through the CLOEXEC error pipe and exit. */
static void child_fail(int errfd, int code, const char *what, const char *arg, int err) {
    char msg[PATH_MAX + 256];
    int n = snprintf(msg, sizeof msg, "%d %s %s: %s", code, what, arg ? arg : "", strerror(err));
    if (n > (int)sizeof msg - 1) n = sizeof msg - 1;
    (void)!write(errfd, msg, (size_t)n);
    _exit(code);
}

static const char *env_get(char **envp, const char *key) {
    size_t k = strlen(key);
    for (char **e = envp; *e; e++)
        if (!strncmp(*e, key, k) && (*e)[k] == '=') return *e + k + 1;
    return NULL;
}

static void exec_command(char **argv, char **envp, int lookup, int errfd) {
    const char *file = argv[0];
    if (!lookup || strchr(file, '/')) {
        execve(file, argv, envp);
        child_fail(errfd, errno == ENOENT ? 127 : 126, "exec", file, errno);
    }
    const char *path = env_get(envp, "PATH");
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
            execve(full, argv, envp);
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

/* ------------------------------------------------------------------ processes */

struct proc {
    int used;
    uint32_t spid;
    pid_t pid;
    int in_fd, out_fd, err_fd, ep_fd; /* init's ends; -1 once closed */
    char *epmsg;                      /* what came through the exec-error pipe */
    size_t eplen;
    char *pend;                       /* stdin bytes waiting for the pipe */
    size_t pend_off, pend_len, pend_cap;
    int close_req;                    /* close stdin once pend is written */
    int timed_out;
    long long start_ns, deadline_ns, end_ns;
    int status;
    struct rusage ru;
};

static struct proc procs[SLOTS]; /* procs[0]: the main command */
static int live_subs;
static sigset_t child_mask;      /* the signal mask a child starts with: empty */
static int sfd;

static struct proc *find(uint32_t spid) {
    for (int i = 0; i < SLOTS; i++)
        if (procs[i].used && procs[i].spid == spid) return &procs[i];
    return NULL;
}

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

/* Drops what waits for p's stdin (crediting it) and closes it. */
static void stdin_drop(struct proc *p) {
    if (p->pend_len) credit(p->spid, (uint32_t)p->pend_len);
    free(p->pend);
    p->pend = NULL;
    p->pend_off = p->pend_len = p->pend_cap = 0;
    close_fd(&p->in_fd);
}

/* Writes what it can of p's pending stdin without blocking. */
static void stdin_flush(struct proc *p) {
    while (p->pend_len && p->in_fd >= 0) {
        ssize_t w = write(p->in_fd, p->pend + p->pend_off, p->pend_len);
        if (w > 0) {
            credit(p->spid, (uint32_t)w);
            p->pend_off += (size_t)w;
            p->pend_len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) return;
        stdin_drop(p); /* EPIPE: the process closed its stdin; what it will never read is dropped */
        return;
    }
    if (p->pend_len == 0) {
        p->pend_off = 0;
        if (p->pend_cap > BUF_SIZE) { /* a large burst is over: give the memory back */
            free(p->pend);
            p->pend = NULL;
            p->pend_cap = 0;
        }
        if (p->close_req) close_fd(&p->in_fd);
    }
}

static void stdin_data(uint32_t spid, const char *data, size_t n) {
    struct proc *p = find(spid);
    if (!p || p->in_fd < 0 || p->close_req || p->pend_len + n > PENDING_CAP) {
        credit(spid, (uint32_t)n); /* nobody will read it */
        return;
    }
    while (p->pend_len == 0 && n > 0) { /* the usual case: straight into the pipe, no copy */
        ssize_t w = write(p->in_fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        if (w <= 0) {
            credit(spid, (uint32_t)n);
            stdin_drop(p);
            return;
        }
        credit(spid, (uint32_t)w);
        data += w;
        n -= (size_t)w;
    }
    if (n == 0) return;
    if (p->pend_off + p->pend_len + n > p->pend_cap) {
        if (p->pend_off) {
            memmove(p->pend, p->pend + p->pend_off, p->pend_len);
            p->pend_off = 0;
        }
        if (p->pend_len + n > p->pend_cap) {
            size_t cap = p->pend_cap ? p->pend_cap : BUF_SIZE;
            while (cap < p->pend_len + n) cap *= 2;
            char *b = realloc(p->pend, cap);
            if (!b) {
                credit(spid, (uint32_t)n);
                return;
            }
            p->pend = b;
            p->pend_cap = cap;
        }
    }
    memcpy(p->pend + p->pend_off + p->pend_len, data, n);
    p->pend_len += n;
    stdin_flush(p);
}

static void stdin_close(struct proc *p) {
    p->close_req = 1;
    if (p->pend_len == 0) close_fd(&p->in_fd);
}

/*
 * Forks one process with pipes for its stdin, stdout and stderr and an exec-error pipe. Returns 0, or an
 * errno (nothing forked, nothing left open). The child never returns.
 */
static int start_proc(struct proc *p, char **argv, char **envp, int lookup, uid_t uid, gid_t gid, const char *cwd) {
    int inp[2], outp[2], errp[2], ep[2];
    int made = 0;
    if (pipe2(inp, O_CLOEXEC) < 0) goto fail;
    made++;
    if (pipe2(outp, O_CLOEXEC) < 0) goto fail;
    made++;
    if (pipe2(errp, O_CLOEXEC) < 0) goto fail;
    made++;
    if (pipe2(ep, O_CLOEXEC) < 0) goto fail;
    made++;
    p->start_ns = now_ns();
    pid_t pid = fork();
    if (pid < 0) goto fail;
    if (pid == 0) {
        /* fd 0/1/2 are init's channel to the server: replaced, never inherited. */
        if (dup2(inp[0], 0) < 0 || dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
            child_fail(ep[1], 125, "dup2", "", errno);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &child_mask, NULL);
        setsid();
        int oa = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (oa >= 0) { (void)!write(oa, "0", 1); close(oa); }
        if (setgroups(1, &gid) < 0 && errno != EPERM) child_fail(ep[1], 125, "setgroups", "", errno);
        if (setgid(gid) < 0) child_fail(ep[1], 125, "setgid", "", errno);
        if (setuid(uid) < 0) child_fail(ep[1], 125, "setuid", "", errno);
        if (cwd && chdir(cwd) < 0) child_fail(ep[1], 125, "chdir", cwd, errno);
        exec_command(argv, envp, lookup, ep[1]);
        _exit(127);
    }
    close(inp[0]);
    close(outp[1]);
    close(errp[1]);
    close(ep[1]);
    fcntl(inp[1], F_SETFL, O_NONBLOCK);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    fcntl(ep[0], F_SETFL, O_NONBLOCK);
    p->pid = pid;
    p->in_fd = inp[1];
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    p->ep_fd = ep[0];
    return 0;
fail:;
    int err = errno;
    int *fds[] = {inp, outp, errp, ep};
    for (int i = 0; i < made; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    return err;
}

/* Relays what p's stdout or stderr holds now; at most `rounds` reads. Returns 0 once the pipe is closed. */
static int relay(struct proc *p, int is_err, int rounds) {
    static char buf[BUF_SIZE];
    int *fd = is_err ? &p->err_fd : &p->out_fd;
    while (*fd >= 0 && rounds-- > 0) {
        ssize_t r = read(*fd, buf, sizeof buf);
        if (r > 0) {
            frame_spid(is_err ? 'E' : 'O', p->spid, buf, (uint32_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r == 0 || errno != EAGAIN) close_fd(fd);
        break;
    }
    return *fd >= 0;
}

#define EPMSG_CAP (PATH_MAX + 256)

/*
 * Reads the exec-error pipe; closes it at EOF, i.e. as soon as the exec succeeded, so that nothing can write
 * into it later (gVisor lets a sandboxed root open init's descriptors).
 */
static void ep_read(struct proc *p) {
    while (p->ep_fd >= 0) {
        if (!p->epmsg && !(p->epmsg = malloc(EPMSG_CAP))) { close_fd(&p->ep_fd); return; }
        char drop[256];
        int full = p->eplen >= EPMSG_CAP - 1;
        ssize_t r = full ? read(p->ep_fd, drop, sizeof drop) : read(p->ep_fd, p->epmsg + p->eplen, EPMSG_CAP - 1 - p->eplen);
        if (r > 0) { if (!full) p->eplen += (size_t)r; continue; }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        close_fd(&p->ep_fd);
    }
}

/*
 * The exec-error message ("CODE what arg: strerror"), minus the code; "" if the exec succeeded. Believed only
 * from a child that exited with the code child_fail gives.
 */
static void exec_error(struct proc *p, char *msg, size_t cap) {
    ep_read(p);
    close_fd(&p->ep_fd);
    size_t len = p->eplen < cap - 1 ? p->eplen : cap - 1;
    if (len) memcpy(msg, p->epmsg, len);
    free(p->epmsg);
    p->epmsg = NULL;
    p->eplen = 0;
    msg[len] = 0;
    int st = p->status;
    if (len && !(WIFEXITED(st) && WEXITSTATUS(st) >= 125 && WEXITSTATUS(st) <= 127)) len = 0;
    msg[len] = 0;
    if (!len) return;
    char *sp = strchr(msg, ' ');
    if (sp) memmove(msg, sp + 1, strlen(sp + 1) + 1);
    for (char *c = msg; *c; c++) if (*c == '\n') *c = ' ';
    /* Also on the process's stderr, as a shell would say it. */
    char line[PATH_MAX + 300];
    int ln = snprintf(line, sizeof line, "contree-init: %s\n", msg);
    if (ln > (int)sizeof line - 1) ln = sizeof line - 1;
    frame_spid('E', p->spid, line, (uint32_t)ln);
}

/* The 'R' record's common part. Returns its length. */
static int result_text(char *res, size_t cap, struct proc *p, int killed_by, const char *err) {
    int st = p->status;
    int exit_code = -1, sig = -1, core = 0;
    if (WIFEXITED(st)) exit_code = WEXITSTATUS(st);
    else if (WIFSIGNALED(st)) {
        sig = WTERMSIG(st);
        core = WCOREDUMP(st) ? 1 : 0;
    }
    const struct rusage *ru = &p->ru;
    int len = snprintf(res, cap,
                       "token=%s\nversion=2\nspid=%u\npid=%d\nexit_code=%d\nsignal=%d\ntimed_out=%d\ncore_dump=%d\n"
                       "killed_by=%d\nelapsed_ns=%lld\n"
                       "utime_us=%lld\nstime_us=%lld\nmaxrss_kb=%ld\nminflt=%ld\nmajflt=%ld\n"
                       "inblock=%ld\noublock=%ld\nnvcsw=%ld\nnivcsw=%ld\nnsignals=%ld\nnswap=%ld\n"
                       "ixrss=%ld\nidrss=%ld\nmsgsnd=%ld\nmsgrcv=%ld\n",
                       token, p->spid, (int)p->pid, exit_code, sig, p->timed_out, core, killed_by,
                       (p->end_ns ? p->end_ns : now_ns()) - p->start_ns,
                       (long long)ru->ru_utime.tv_sec * 1000000LL + ru->ru_utime.tv_usec,
                       (long long)ru->ru_stime.tv_sec * 1000000LL + ru->ru_stime.tv_usec, ru->ru_maxrss, ru->ru_minflt,
                       ru->ru_majflt, ru->ru_inblock, ru->ru_oublock, ru->ru_nvcsw, ru->ru_nivcsw, ru->ru_nsignals,
                       ru->ru_nswap, ru->ru_ixrss, ru->ru_idrss, ru->ru_msgsnd, ru->ru_msgrcv);
    if (len > (int)cap - 1) len = (int)cap - 1;
    if (err && *err && len < (int)cap - 1) len += snprintf(res + len, cap - (size_t)len, "error=%s\n", err);
    if (len > (int)cap - 1) len = (int)cap - 1;
    return len;
}

/* A spawn init will not start: its one 'R', no 'S'. */
static void refuse(uint32_t spid, const char *why) {
    char res[512];
    int len = snprintf(res, sizeof res,
                       "token=%s\nversion=2\nspid=%u\npid=-1\nexit_code=-1\nsignal=-1\ntimed_out=0\ncore_dump=0\n"
                       "killed_by=0\nelapsed_ns=0\nerror=%s\n", token, spid, why);
    if (len > (int)sizeof res - 1) len = sizeof res - 1;
    frame('R', res, (uint32_t)len);
}

/* A subprocess was reaped: what its pipes hold now, then its 'R'; its slot is free again. */
static void finish_sub(struct proc *p) {
    char err[PATH_MAX + 256];
    exec_error(p, err, sizeof err);
    relay(p, 0, 16); /* bounded: a background job may keep writing; it gets EPIPE once these close */
    relay(p, 1, 16);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    stdin_drop(p);
    char res[PATH_MAX + 1536];
    int len = result_text(res, sizeof res, p, 0, err);
    frame('R', res, (uint32_t)len);
    memset(p, 0, sizeof *p);
    live_subs--;
}

/* ------------------------------------------------------------------ control channel (fd 0) */

static int ctl_open = 1;  /* still reading frames from fd 0 */
static int ctl_dead;      /* a malformed frame was seen: fd 0 is read and dropped */

static void ctl_malformed(const char *why, unsigned type, uint32_t len) {
    warn("malformed control frame (%s, type 0x%02x, length %u); control ignored from now on", why, type, len);
    ctl_dead = 1;
    for (int i = 0; i < SLOTS; i++)
        if (procs[i].used) stdin_close(&procs[i]);
}

static void spawn(uint32_t spid, char *s, size_t n) {
    if (find(spid)) { refuse(spid, "spid in use"); return; }
    if (live_subs >= MAX_SUBS) { refuse(spid, "too many live subprocesses (64)"); return; }
    if (n == 0 || s[n - 1] != 0) { refuse(spid, "bad spawn payload"); return; }
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += s[i] == 0;
    char **str = malloc((count + 1) * sizeof *str);
    if (!str) { refuse(spid, "out of memory"); return; }
    size_t k = 0;
    for (char *c = s; c < s + n; c += strlen(c) + 1) str[k++] = c;
    const char *why = NULL;
    long long uid = -1, gid = -1, tmo = -1, argc = -1;
    if (k < 7) why = "bad spawn payload";
    else {
        uid = parse_num(str[0], 4294967294LL);
        gid = parse_num(str[1], 4294967294LL);
        tmo = parse_num(str[2], 1LL << 40);
        argc = parse_num(str[5], (long long)(k - 6));
        if (uid < 0 || gid < 0) why = "bad uid/gid";
        else if (tmo < 0) why = "bad timeout";
        else if (strcmp(str[3], "0") && strcmp(str[3], "1")) why = "bad lookup_path";
        else if (str[4][0] != '/' || strlen(str[4]) >= PATH_MAX) why = "bad cwd";
        else if (argc < 1 || !str[6][0]) why = "bad argv";
    }
    if (!why)
        for (size_t e = 6 + (size_t)argc; e < k; e++)
            if (str[e][0] == '=' || !strchr(str[e], '=')) { why = "bad env entry"; break; }
    if (why) {
        refuse(spid, why);
        free(str);
        return;
    }
    /* argv = str[6 .. 6+argc), env = str[6+argc .. k): both NULL-terminated in place. */
    char **argv = malloc(((size_t)argc + 1) * sizeof *argv);
    if (!argv) { refuse(spid, "out of memory"); free(str); return; }
    memcpy(argv, str + 6, (size_t)argc * sizeof *argv);
    argv[argc] = NULL;
    char **envp = str + 6 + argc;
    str[k] = NULL;
    struct proc *p = NULL;
    for (int i = 1; i < SLOTS; i++) if (!procs[i].used) { p = &procs[i]; break; }
    ensure_cwd(str[4]);
    memset(p, 0, sizeof *p);
    p->in_fd = p->out_fd = p->err_fd = p->ep_fd = -1;
    int err = start_proc(p, argv, envp, str[3][0] == '1', (uid_t)uid, (gid_t)gid, str[4]);
    free(argv);
    free(str);
    if (err) {
        char msg[128];
        snprintf(msg, sizeof msg, "fork: %s", strerror(err));
        refuse(spid, msg);
        return;
    }
    p->used = 1;
    p->spid = spid;
    p->deadline_ns = tmo > 0 ? p->start_ns + tmo * 1000000LL : 0;
    live_subs++;
    char st[128];
    int len = snprintf(st, sizeof st, "token=%s\nspid=%u\npid=%d\n", token, spid, (int)p->pid);
    frame('S', st, (uint32_t)len);
}

static void ctl_frame(unsigned char type, unsigned char *pl, uint32_t len) {
    uint32_t spid = get32(pl);
    switch (type) {
    case 'I':
        stdin_data(spid, (char *)pl + 4, len - 4);
        break;
    case 'C': {
        struct proc *p = find(spid);
        if (p) stdin_close(p);
        break;
    }
    case 'K': {
        struct proc *p = find(spid);
        int signo = (int)get32(pl + 4);
        if (p && signo > 0 && signo < 65) kill(p->pid, signo);
        break;
    }
    case 'X':
        /* spid 0 and 1 are never subprocesses: an 'R' for spid 1 would pass for the main command's */
        if (spid < 2) ctl_malformed("spawn of spid < 2", type, len);
        else spawn(spid, (char *)pl + 4, len - 4);
        break;
    }
}

static unsigned char ctl[CTL_CAP];
static size_t ctl_len;

/* One read from fd 0, then every complete frame in the buffer. */
static void ctl_read(void) {
    ssize_t r = read(0, ctl + ctl_len, sizeof ctl - ctl_len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r <= 0) {
        /* The server is gone or done writing: every stdin ends once what it sent is written. */
        ctl_open = 0;
        for (int i = 0; i < SLOTS; i++)
            if (procs[i].used) stdin_close(&procs[i]);
        return;
    }
    if (ctl_dead) return; /* read and dropped: the server must not block on a full pipe */
    ctl_len += (size_t)r;
    size_t off = 0;
    while (ctl_len - off >= 5 && !ctl_dead) {
        unsigned char type = ctl[off];
        uint32_t len = get32(ctl + off + 1);
        uint32_t min = 4, max = 4;
        switch (type) {
        case 'I': min = 4; max = MAX_STDIN_FRAME; break;
        case 'C': break;
        case 'K': min = max = 8; break;
        case 'X': min = 4; max = MAX_SPAWN_FRAME; break;
        default: ctl_malformed("unknown type", type, len); return;
        }
        if (len < min || len > max) { ctl_malformed("bad length", type, len); return; }
        if (ctl_len - off - 5 < len) break;
        ctl_frame(type, ctl + off + 5, len);
        off += 5 + len;
    }
    if (off) {
        memmove(ctl, ctl + off, ctl_len - off);
        ctl_len -= off;
    }
}

/* ------------------------------------------------------------------ main */

/* A small kernel file's text into buf (NUL-terminated): 0, or -1 when it cannot be read or is empty. */
static int read_small(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, buf, size - 1);
    close(fd);
    if (r <= 0) return -1;
    buf[r] = 0;
    return 0;
}

int main(int argc, char **argv) {
    long long t0 = now_ns();
    /* First: close /proc/1/{fd,mem,environ,...} to the command (see the header). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) die("prctl(PR_SET_DUMPABLE): %s", strerror(errno));
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
    int lookup = 0, mkcwd = 0, vm = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { i++; break; }
        if (!strcmp(a, "-p")) { lookup = 1; continue; }
        if (!strcmp(a, "-m")) { mkcwd = 1; continue; }
        if (!strcmp(a, "-V")) { vm = 1; continue; }
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
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigemptyset(&child_mask);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("sigprocmask: %s", strerror(errno));
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) die("signalfd: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    fcntl(0, F_SETFL, O_NONBLOCK); /* a pipe: no other status flag matters; children get their own fd 0 */

    if (cwd && mkcwd) ensure_cwd(cwd);

    extern char **environ;
    struct proc *mainp = &procs[0];
    mainp->in_fd = mainp->out_fd = mainp->err_fd = mainp->ep_fd = -1;
    int err = start_proc(mainp, cmd, environ, lookup, uid, gid, cwd);
    if (err) die("fork: %s", strerror(err));
    mainp->used = 1;
    mainp->spid = 1;
    long long start_ns = mainp->start_ns;
    {
        char s[128];
        int n = snprintf(s, sizeof s, "token=%s\nspid=1\npid=%d\n", token, (int)mainp->pid);
        frame('S', s, (uint32_t)n);
    }

    long long deadline = timeout_ms > 0 ? start_ns + (long long)timeout_ms * 1000000LL : 0;
    int main_done = 0, killed_by = 0;
    long long drain_deadline = 0;
    char main_err[PATH_MAX + 256];
    main_err[0] = 0;
    /* Poll set: signalfd, fd 0, and per process stdout, stderr, exec-error pipe and (with pending bytes) stdin. */
    struct pollfd pfd[2 + 4 * SLOTS];
    struct proc *pproc[2 + 4 * SLOTS];
    char pkind[2 + 4 * SLOTS];

    for (;;) {
        /* Reap everything that has exited. */
        int no_children = 0;
        for (;;) {
            int st;
            struct rusage r;
            pid_t w = wait4(-1, &st, WNOHANG, &r);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && errno == ECHILD) no_children = 1;
            if (w <= 0) break;
            if (w == mainp->pid && !main_done) {
                main_done = 1;
                mainp->status = st;
                mainp->ru = r;
                mainp->end_ns = now_ns();
                exec_error(mainp, main_err, sizeof main_err);
                stdin_drop(mainp);
                continue;
            }
            for (int k = 1; k < SLOTS; k++) {
                struct proc *p = &procs[k];
                if (p->used && p->pid == w) {
                    p->status = st;
                    p->ru = r;
                    p->end_ns = now_ns();
                    finish_sub(p);
                    break;
                }
            }
        }
        if (main_done && !drain_deadline) {
            /* Main process gone: nothing else may outlive it. */
            kill_all();
            drain_deadline = now_ns() + 2000000000LL;
        }
        if (main_done) {
            kill_all(); /* also catches processes forked during the previous kill */
            int open_pipes = mainp->out_fd >= 0 || mainp->err_fd >= 0;
            if (no_children && !open_pipes) break;
            if (no_children && now_ns() > drain_deadline) break; /* pipe held by nobody we know: give up */
        }

        int n = 0;
        pfd[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
        pkind[n++] = 's';
        if (ctl_open && !main_done) {
            pfd[n] = (struct pollfd){.fd = 0, .events = POLLIN};
            pkind[n++] = 'c';
        }
        long long now = now_ns();
        long long next = 0; /* earliest deadline */
        for (int k = 0; k < SLOTS; k++) {
            struct proc *p = &procs[k];
            if (!p->used) continue;
            if (p->out_fd >= 0) { pfd[n] = (struct pollfd){.fd = p->out_fd, .events = POLLIN}; pproc[n] = p; pkind[n++] = 'o'; }
            if (p->err_fd >= 0) { pfd[n] = (struct pollfd){.fd = p->err_fd, .events = POLLIN}; pproc[n] = p; pkind[n++] = 'e'; }
            if (p->in_fd >= 0 && p->pend_len) { pfd[n] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT}; pproc[n] = p; pkind[n++] = 'i'; }
            if (p->ep_fd >= 0) { pfd[n] = (struct pollfd){.fd = p->ep_fd, .events = POLLIN}; pproc[n] = p; pkind[n++] = 'p'; }
            if (k > 0 && p->deadline_ns && !p->timed_out) {
                if (p->deadline_ns <= now) {
                    /* A subprocess's timeout: its process group, not the instance. */
                    p->timed_out = 1;
                    kill(-p->pid, SIGKILL);
                    kill(p->pid, SIGKILL);
                } else if (!next || p->deadline_ns < next) next = p->deadline_ns;
            }
        }

        int wait_ms = -1;
        if (main_done) wait_ms = 50;
        else if (deadline && !mainp->timed_out) {
            long long left = deadline - now;
            if (left <= 0) {
                mainp->timed_out = 1;
                kill_all();
                continue;
            }
            if (!next || deadline < next) next = deadline;
        } else if (mainp->timed_out) wait_ms = 50; /* keep killing until the main process is reaped */
        if (mainp->timed_out && !main_done) kill_all();
        if (wait_ms < 0 && next) {
            long long ms = (next - now + 999999) / 1000000;
            wait_ms = ms > 3600000 ? 3600000 : (int)ms;
        }

        int pr = poll(pfd, (nfds_t)n, wait_ms);
        if (pr < 0 && errno != EINTR) die("poll: %s", strerror(errno));
        if (pr <= 0) continue;

        for (int k = 0; k < n; k++) {
            short re = pfd[k].revents;
            if (!re) continue;
            struct proc *p = pproc[k];
            switch (pkind[k]) {
            case 's': {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    /* ssi_pid != 0: the sender is a process of this sandbox, not the runtime. */
                    if (si.ssi_signo != SIGCHLD && !main_done && si.ssi_pid == 0) {
                        /* Asked to stop (e.g. `runc kill TERM`): kill the tree, report it. */
                        killed_by = (int)si.ssi_signo;
                        kill_all();
                    }
                }
                break;
            }
            case 'c':
                if (re & (POLLIN | POLLHUP | POLLERR)) ctl_read();
                break;
            case 'o':
            case 'e':
                if (p->used && (re & (POLLIN | POLLHUP | POLLERR))) relay(p, pkind[k] == 'e', 16);
                break;
            case 'p':
                if (p->used) ep_read(p);
                break;
            case 'i':
                if (p->used && p->in_fd >= 0) {
                    if (re & POLLERR) stdin_drop(p); /* the reader is gone */
                    else stdin_flush(p);
                }
                break;
            }
        }
    }

    /* Final drain of anything left in the main pipes (non-blocking). */
    relay(mainp, 0, INT_MAX);
    relay(mainp, 1, INT_MAX);

    char res[4096];
    int len = result_text(res, sizeof res - 1024, mainp, killed_by, NULL);
    len += snprintf(res + len, sizeof res - (size_t)len, "init_ns=%lld\n", start_ns - t0);
    /* cgroup figures, when the runtime exposes the container's cgroup read-only. */
    static const char *cg[][2] = {
        {"cg_mem_max_usage", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"},
        {"cg_mem_failcnt", "/sys/fs/cgroup/memory/memory.failcnt"},
        {"cg_cpu_usage_ns", "/sys/fs/cgroup/cpuacct/cpuacct.usage"},
        {"cg_pids_max_hit", "/sys/fs/cgroup/pids/pids.events"},
        {"cg_oom_kills", "/sys/fs/cgroup/memory/memory.oom_control"},
    };
    for (size_t k = 0; k < sizeof cg / sizeof cg[0] && len < (int)sizeof res - 128; k++) {
        char v[256];
        if (read_small(cg[k][1], v, sizeof v) < 0) continue;
        char *num = v;
        if (!strncmp(v, "max ", 4)) num = v + 4; /* pids.events: "max N" */
        char *ok = strstr(v, "oom_kill "); /* memory.oom_control: "... oom_kill N" */
        if (ok) num = ok + 9;
        else if (strstr(v, "oom_kill_disable")) continue;
        num[strcspn(num, "\n")] = 0;
        len += snprintf(res + len, sizeof res - (size_t)len, "%s=%s\n", cg[k][0], num);
    }
    /* -V: the guest's eth0 counters (a networked VM's only interface out), for the run's network figures. */
    static const char *net[][2] = {
        {"net_tx_bytes", "/sys/class/net/eth0/statistics/tx_bytes"},
        {"net_rx_bytes", "/sys/class/net/eth0/statistics/rx_bytes"},
    };
    for (size_t k = 0; vm && k < sizeof net / sizeof net[0] && len < (int)sizeof res - 128; k++) {
        char v[32];
        if (read_small(net[k][1], v, sizeof v) < 0) continue;
        v[strcspn(v, "\n")] = 0;
        len += snprintf(res + len, sizeof res - (size_t)len, "%s=%s\n", net[k][0], v);
    }
    if (main_err[0] && len < (int)sizeof res - 1)
        len += snprintf(res + len, sizeof res - (size_t)len, "error=%s\n", main_err);
    if (len > (int)sizeof res - 1) len = sizeof res - 1;
    /* -V (the vm runtime): the guest's page cache reaches the host's rootfs before the server hears of the end,
     * since the server stops the VM as soon as it has this result. */
    if (vm) sync();
    frame('R', res, (uint32_t)len);
    if (vm) {
        /* Wait (bounded) for the server to stop the VM: returning would panic the guest kernel. */
        struct pollfd pf = {.fd = 0, .events = POLLIN};
        long long until = now_ns() + 10000000000LL;
        while (now_ns() < until) {
            if (poll(&pf, 1, 1000) > 0 && (pf.revents & (POLLHUP | POLLERR))) break;
            if (pf.revents & POLLIN) {
                char drop[4096];
                if (read(0, drop, sizeof drop) == 0) break;
            }
        }
    }
    return 0;
}

package dev.contree.sandbox;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the OCI runtime spec (config.json) of a sandbox. */
final class OciSpecs {
    private OciSpecs() {}

    /** Docker's default capability set minus NET_RAW (no use without network, handy for spoofing with it). */
    static final List<String> CAPS = List.of("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
            "CAP_MKNOD", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
            "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE");

    /** Docker's masked paths. */
    static final List<String> MASKED = List.of("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/sys/firmware", "/sys/devices/virtual/powercap");

    /** Docker's read-only paths. */
    static final List<String> READONLY = List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
            "/proc/sysrq-trigger");

    /** Denied outright with EPERM (a deny list covering what Docker's allow-list profile refuses). */
    static final List<String> SECCOMP_DENY = List.of("acct", "add_key", "bpf", "clock_adjtime", "clock_settime",
            "create_module", "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
            "get_kernel_syms", "get_mempolicy", "init_module", "io_uring_enter", "io_uring_register",
            "io_uring_setup", "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
            "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at",
            "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pidfd_getfd", "pivot_root",
            "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
            "quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapoff",
            "swapon", "sysfs", "_sysctl", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd",
            "ustat", "vhangup", "vm86", "vm86old");

    /** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: refused in clone() as in Docker. */
    static final long[] NS_FLAGS = {0x00020000L, 0x02000000L, 0x04000000L, 0x08000000L, 0x10000000L, 0x20000000L,
            0x40000000L};

    /**
     * runsc: host pids cgroup limit = pids * factor + overhead, a backstop only. Under the ptrace platform every
     * sandbox task costs host threads (stub + tracer) and the sentry's Go runtime has its own; hitting the host
     * limit crashes the sentry. Measured: a fork bomb under RLIMIT_NPROC=64 peaked at ~2,000 host tasks.
     */
    static final long RUNSC_PIDS_FACTOR = 16, RUNSC_PIDS_OVERHEAD = 2048;

    record Limits(long memoryBytes, long pidsLimit, double cpus) {}

    static Map<String, Object> build(RuntimeConfig.Kind kind, SandboxSpec spec, List<String> initArgs, Path initBinary,
                                     String cgroupsPath, Limits limits, Path networkNs, boolean memswAvailable) {
        boolean runc = kind == RuntimeConfig.Kind.RUNC;
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("ociVersion", "1.0.2");

        Map<String, Object> process = new LinkedHashMap<>();
        process.put("terminal", false);
        process.put("user", Map.of("uid", 0, "gid", 0));
        process.put("args", initArgs);
        List<String> env = new ArrayList<>();
        spec.env().forEach((k, v) -> env.add(k + "=" + v));
        process.put("env", env);
        process.put("cwd", "/");
        process.put("capabilities", Map.of("bounding", CAPS, "effective", CAPS, "permitted", CAPS));
        if (!runc && limits.pidsLimit() > 0) {
            // gVisor (this version) has no pids controller inside the sandbox, and the host pids cgroup
            // counts the sentry's own threads: hitting it crashes the sandbox. gVisor enforces
            // RLIMIT_NPROC for every uid (root included), so that is the in-sandbox process limit.
            process.put("rlimits", List.of(Map.of("type", "RLIMIT_NPROC", "hard", limits.pidsLimit(),
                    "soft", limits.pidsLimit())));
        }
        process.put("noNewPrivileges", true);
        root.put("process", process);

        root.put("root", Map.of("path", spec.rootfs().toAbsolutePath().toString(), "readonly", false));
        root.put("hostname", spec.hostname());

        root.put("mounts", mounts(kind, spec.rootfs(), initBinary));

        Map<String, Object> linux = new LinkedHashMap<>();
        List<Map<String, Object>> ns = new ArrayList<>();
        for (String t : runc ? List.of("pid", "ipc", "uts", "mount", "cgroup") : List.of("pid", "ipc", "uts", "mount"))
            ns.add(Map.of("type", t));
        if (networkNs != null) ns.add(Map.of("type", "network", "path", networkNs.toString()));
        else ns.add(Map.of("type", "network"));
        linux.put("namespaces", ns);

        Map<String, Object> res = new LinkedHashMap<>();
        res.put("devices", List.of(Map.of("allow", false, "access", "rwm")));
        if (limits.memoryBytes() > 0) {
            Map<String, Object> mem = new LinkedHashMap<>();
            mem.put("limit", limits.memoryBytes());
            if (memswAvailable) mem.put("swap", limits.memoryBytes());
            res.put("memory", mem);
        }
        if (limits.cpus() > 0) {
            long period = 100_000;
            res.put("cpu", Map.of("quota", Math.max(1000, (long) (limits.cpus() * period)), "period", period));
        }
        if (limits.pidsLimit() > 0)
            res.put("pids", Map.of("limit", runc ? limits.pidsLimit() : limits.pidsLimit() * RUNSC_PIDS_FACTOR + RUNSC_PIDS_OVERHEAD));
        linux.put("resources", res);
        linux.put("cgroupsPath", cgroupsPath);
        linux.put("maskedPaths", MASKED);
        linux.put("readonlyPaths", READONLY);
        linux.put("seccomp", seccomp()); // runsc applies it inside the sentry (--oci-seccomp)
        root.put("linux", linux);
        return root;
    }

    /** The mounts of a sandbox over {@code rootfs}, in the order the runtime makes them. */
    static List<Map<String, Object>> mounts(RuntimeConfig.Kind kind, Path rootfs, Path initBinary) {
        boolean runc = kind == RuntimeConfig.Kind.RUNC;
        List<Map<String, Object>> mounts = new ArrayList<>();
        mounts.add(mount("/proc", "proc", "proc", List.of("nosuid", "noexec", "nodev")));
        mounts.add(mount("/dev", "tmpfs", "tmpfs", List.of("nosuid", "strictatime", "mode=755", "size=65536k")));
        mounts.add(mount("/dev/pts", "devpts", "devpts",
                List.of("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")));
        mounts.add(mount("/dev/shm", "tmpfs", "shm", List.of("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")));
        if (runc) mounts.add(mount("/dev/mqueue", "mqueue", "mqueue", List.of("nosuid", "noexec", "nodev")));
        mounts.add(mount("/sys", "sysfs", "sysfs", List.of("nosuid", "noexec", "nodev", "ro")));
        if (runc) {
            mounts.add(mount("/sys/fs/cgroup", "cgroup", "cgroup", List.of("nosuid", "noexec", "nodev", "relatime", "ro")));
        } else {
            // gVisor would otherwise put a private tmpfs on /tmp: writes there would escape the snapshot.
            mounts.add(mount("/tmp", "bind", rootfs.toAbsolutePath().resolve("tmp").toString(),
                    List.of("rbind", "rw")));
        }
        mounts.add(mount(SandboxRuntime.INIT_PATH, "bind", initBinary.toString(),
                List.of("bind", "ro", "nosuid", "nodev")));
        return mounts;
    }

    /**
     * The paths inside the rootfs that the runtime resolves on the host for {@code mounts}: every mount
     * destination not below a fresh file system mounted earlier (/dev/pts lives in the /dev tmpfs), and every
     * bind source inside the rootfs (runsc's /tmp). A file bind (contree-init) needs a file there, the rest
     * a directory. None may hold a symlink when the runtime starts ({@link RootfsCheck}).
     */
    static List<SandboxRuntime.MountPoint> rootfsMountPoints(List<Map<String, Object>> mounts, Path rootfs, Path initBinary) {
        List<SandboxRuntime.MountPoint> out = new ArrayList<>();
        List<String> freshFs = new ArrayList<>();
        Path root = rootfs.toAbsolutePath().normalize();
        for (Map<String, Object> m : mounts) {
            String dest = (String) m.get("destination");
            boolean bind = "bind".equals(m.get("type"));
            boolean nested = freshFs.stream().anyMatch(f -> dest.startsWith(f + "/"));
            if (!bind) freshFs.add(dest);
            if (nested) continue;
            Path source = Path.of((String) m.get("source")).normalize();
            out.add(new SandboxRuntime.MountPoint(dest, !(bind && source.equals(initBinary))));
            if (bind && source.isAbsolute() && source.startsWith(root) && !source.equals(root))
                out.add(new SandboxRuntime.MountPoint("/" + root.relativize(source), true));
        }
        return out;
    }

    private static Map<String, Object> mount(String dest, String type, String source, List<String> options) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("destination", dest);
        m.put("type", type);
        m.put("source", source);
        m.put("options", options);
        return m;
    }

    static Map<String, Object> seccomp() {
        List<Map<String, Object>> rules = new ArrayList<>();
        rules.add(Map.of("names", SECCOMP_DENY, "action", "SCMP_ACT_ERRNO", "errnoRet", 1));
        // glibc falls back to clone() when clone3 says ENOSYS; clone3's flags are in memory, not filterable.
        rules.add(Map.of("names", List.of("clone3"), "action", "SCMP_ACT_ERRNO", "errnoRet", 38));
        // clone() may not create namespaces (user namespaces would work without any capability).
        for (long flag : NS_FLAGS) {
            rules.add(Map.of("names", List.of("clone"), "action", "SCMP_ACT_ERRNO", "errnoRet", 1,
                    "args", List.of(Map.of("index", 0, "value", flag, "valueTwo", flag, "op", "SCMP_CMP_MASKED_EQ"))));
        }
        // Socket families: an allow-list. AF_UNIX (1), AF_INET (2), AF_INET6 (10) and AF_NETLINK (16) with
        // NETLINK_ROUTE (0) only (what `ip` and getaddrinfo need); every other family (AF_VSOCK, AF_PACKET,
        // AF_KEY, AF_ALG, AF_XDP, AF_BLUETOOTH, AF_TIPC, AF_RDS, ...) is kernel attack surface no sandbox
        // uses: EAFNOSUPPORT, as if it were not built. The family is compared as 64 bits, so a value with
        // high bits set is >= 17 and refused too. A rule compares one argument once, hence the enumeration.
        for (String call : List.of("socket", "socketpair")) {
            rules.add(errno(call, 97, cmp(0, "SCMP_CMP_GE", 17)));
            for (long family : new long[] {0, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15})
                rules.add(errno(call, 97, cmp(0, "SCMP_CMP_EQ", family)));
            rules.add(errno(call, 97, cmp(0, "SCMP_CMP_EQ", 16), cmp(2, "SCMP_CMP_NE", 0)));
        }
        // No signal to PID 1 from inside: the kernel drops them for runc already (init is unkillable in its
        // namespace, and init ignores senders with a pid), but gVisor delivers a sandboxed kill(1, SIGKILL).
        for (String call : List.of("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open"))
            rules.add(errno(call, 1, cmp(0, "SCMP_CMP_EQ", 1)));
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("defaultAction", "SCMP_ACT_ALLOW");
        s.put("architectures", List.of("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"));
        s.put("syscalls", rules);
        return s;
    }

    private static Map<String, Object> cmp(int index, String op, long value) {
        return Map.of("index", index, "value", value, "op", op);
    }

    @SafeVarargs
    private static Map<String, Object> errno(String call, int errno, Map<String, Object>... args) {
        return Map.of("names", List.of(call), "action", "SCMP_ACT_ERRNO", "errnoRet", errno, "args", List.of(args));
    }

    static boolean memswAvailable() {
        return Files.exists(Path.of("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"));
    }
}

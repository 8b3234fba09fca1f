package dev.contree.sandbox;

import dev.contree.network.SandboxNetwork;
import dev.contree.network.UidBlock;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Builds the OCI runtime spec (config.json) of a sandbox; {@link #toJson} writes it. */
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

    /** @param network the sandbox's network when it asked for one, else null (a new namespace with only lo) */
    static RuntimeSpec buildWithNetwork(RuntimeConfig cfg, SandboxSpec spec, List<String> initArgs, Path initBinary,
                                        String cgroupsPath, Limits limits, SandboxNetwork network, boolean memswAvailable) {
        return build(cfg, spec, initArgs, initBinary, cgroupsPath, limits, network == null ? null : network.namespace(),
                network == null ? null : network.resolvConf(), network != null && network.dedicated(), memswAvailable);
    }

    /** A sandbox joining the namespace {@code networkNs} (null: a new one with only lo), with the image's resolv.conf. */
    static RuntimeSpec build(RuntimeConfig cfg, SandboxSpec spec, List<String> initArgs, Path initBinary,
                             String cgroupsPath, Limits limits, Path networkNs, boolean memswAvailable) {
        return build(cfg, spec, initArgs, initBinary, cgroupsPath, limits, networkNs, null, false, memswAvailable);
    }

    /** {@code uplinkUids}: the namespace belongs to an uplink's user namespace ({@link #withoutUplinkUids}). */
    private static RuntimeSpec build(RuntimeConfig cfg, SandboxSpec spec, List<String> initArgs, Path initBinary,
                                     String cgroupsPath, Limits limits, Path networkNs, Path resolvConf, boolean uplinkUids,
                                     boolean memswAvailable) {
        RuntimeConfig.Kind kind = cfg.kind();
        boolean runc = kind == RuntimeConfig.Kind.RUNC;
        List<String> env = new ArrayList<>();
        spec.env().forEach((k, v) -> env.add(k + "=" + v));
        List<RuntimeSpec.Rlimit> rlimits = null;
        if (!runc && limits.pidsLimit() > 0) {
            // gVisor (this version) has no pids controller inside the sandbox, and the host pids cgroup
            // counts the sentry's own threads: hitting it crashes the sandbox. gVisor enforces
            // RLIMIT_NPROC for every uid (root included), so that is the in-sandbox process limit.
            rlimits = List.of(new RuntimeSpec.Rlimit("RLIMIT_NPROC", limits.pidsLimit(), limits.pidsLimit()));
        }
        var process = new RuntimeSpec.Process(false, new RuntimeSpec.User(0, 0), initArgs, env, "/",
                new RuntimeSpec.Capabilities(CAPS, CAPS, CAPS), rlimits, true);

        List<RuntimeSpec.Namespace> ns = new ArrayList<>();
        // No cgroup namespace (Docker's default on cgroup v1 too): runc then bind-mounts the sandbox's own cgroup
        // directories read-only at /sys/fs/cgroup, where in a cgroup namespace it mounts every v1 hierarchy afresh,
        // 3.2 ms of CPU per run (of ~20). The sandbox sees the same files (its own limits and counters, which
        // contree-init reads); /proc/self/cgroup shows its host path (/<cgroupParent>/contree-<id>) instead of /.
        for (String t : List.of("pid", "ipc", "uts", "mount")) ns.add(new RuntimeSpec.Namespace(t, null));
        ns.add(new RuntimeSpec.Namespace("network", networkNs == null ? null : networkNs.toString()));

        RuntimeSpec.Memory memory = limits.memoryBytes() > 0
                ? new RuntimeSpec.Memory(limits.memoryBytes(), memswAvailable ? limits.memoryBytes() : null) : null;
        long period = 100_000;
        RuntimeSpec.Cpu cpu = limits.cpus() > 0
                ? new RuntimeSpec.Cpu(Math.max(1000, (long) (limits.cpus() * period)), period) : null;
        RuntimeSpec.Pids pids = limits.pidsLimit() > 0
                ? new RuntimeSpec.Pids(runc ? limits.pidsLimit() : limits.pidsLimit() * RUNSC_PIDS_FACTOR + RUNSC_PIDS_OVERHEAD) : null;
        var resources = new RuntimeSpec.Resources(List.of(new RuntimeSpec.DeviceRule(false, "rwm")), memory, cpu, pids);
        // runsc applies the seccomp profile inside the sentry (--oci-seccomp)
        boolean compat32 = runc && cfg.compat32();
        RuntimeSpec.Seccomp seccomp = uplinkUids ? (compat32 ? SECCOMP_COMPAT32_NETWORKED : SECCOMP_NETWORKED)
                : (compat32 ? SECCOMP_COMPAT32 : SECCOMP);
        var linux = new RuntimeSpec.Linux(ns, resources, cgroupsPath, MASKED, READONLY, seccomp);

        return new RuntimeSpec("1.0.2", process, new RuntimeSpec.Root(spec.rootfs().toAbsolutePath().toString(), false),
                spec.hostname(), mounts(kind, spec.rootfs(), initBinary, resolvConf), linux);
    }

    /** The mounts of a sandbox without network over {@code rootfs}, in the order the runtime makes them. */
    static List<RuntimeSpec.Mount> mounts(RuntimeConfig.Kind kind, Path rootfs, Path initBinary) {
        return mounts(kind, rootfs, initBinary, null);
    }

    /**
     * The mounts over {@code rootfs}, in the order the runtime makes them; {@code resolvConf} (a networked sandbox's,
     * else null) is bound read-only over {@code /etc/resolv.conf}, so the image's layers never change for it and the
     * commit drops the mount point the runtime may have created ({@link SandboxRuntime#RESOLV_CONF}).
     */
    static List<RuntimeSpec.Mount> mounts(RuntimeConfig.Kind kind, Path rootfs, Path initBinary, Path resolvConf) {
        boolean runc = kind == RuntimeConfig.Kind.RUNC;
        List<RuntimeSpec.Mount> mounts = new ArrayList<>();
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
        if (resolvConf != null)
            mounts.add(mount(SandboxRuntime.RESOLV_CONF, "bind", resolvConf.toString(), List.of("bind", "ro", "nosuid", "nodev", "noexec")));
        return mounts;
    }

    /**
     * The paths inside the rootfs that the runtime resolves on the host for {@code mounts}: every mount
     * destination not below a fresh file system mounted earlier (/dev/pts lives in the /dev tmpfs), and every
     * bind source inside the rootfs (runsc's /tmp). A file bind (contree-init, resolv.conf) needs a file there, the
     * rest a directory. None may hold a symlink when the runtime starts ({@link RootfsCheck}).
     */
    static List<SandboxRuntime.MountPoint> rootfsMountPoints(List<RuntimeSpec.Mount> mounts, Path rootfs, Path initBinary) {
        List<SandboxRuntime.MountPoint> out = new ArrayList<>();
        List<String> freshFs = new ArrayList<>();
        Path root = rootfs.toAbsolutePath().normalize();
        for (RuntimeSpec.Mount m : mounts) {
            String dest = m.destination();
            boolean bind = "bind".equals(m.type());
            boolean nested = freshFs.stream().anyMatch(f -> dest.startsWith(f + "/"));
            if (!bind) freshFs.add(dest);
            if (nested) continue;
            Path source = Path.of(m.source()).normalize();
            boolean fileBind = bind && (source.equals(initBinary) || dest.equals(SandboxRuntime.RESOLV_CONF));
            out.add(new SandboxRuntime.MountPoint(dest, !fileBind));
            if (bind && source.isAbsolute() && source.startsWith(root) && !source.equals(root))
                out.add(new SandboxRuntime.MountPoint("/" + root.relativize(source), true));
        }
        return out;
    }

    private static RuntimeSpec.Mount mount(String dest, String type, String source, List<String> options) {
        return new RuntimeSpec.Mount(dest, type, source, options);
    }

    /**
     * The ABIs the filter admits. x86_64 alone by default: a system call of any other ABI (the i386 one through
     * {@code int 0x80} or a 32-bit binary, x32) then kills the process with SIGSYS before the kernel sees it. That
     * closes the kernel's compat syscall entry, a separate syscall table with its own argument conversions and a
     * history of privilege escalations of its own, and it halves what runc spends on seccomp per run (it compiles
     * the rules for each ABI listed: 2.0-2.4 ms of CPU per run with x86_64, x86 and x32, 0.7-1.1 ms with x86_64 alone). The price:
     * 32-bit binaries in an image do not run, which an operator may take back with {@code --sandbox-32bit} (adds the
     * i386 ABI, under the same rules). x32 stays out either way (Debian's kernels do not even build it). gVisor
     * implements no 32-bit ABI at all and ignores this list.
     */
    static final List<String> ARCHES = List.of("SCMP_ARCH_X86_64");
    static final List<String> ARCHES_COMPAT32 = List.of("SCMP_ARCH_X86_64", "SCMP_ARCH_X86");

    /** The profile, built once: it depends on nothing of the run but whether it has a network of its own. */
    private static final RuntimeSpec.Seccomp SECCOMP = seccomp(ARCHES), SECCOMP_COMPAT32 = seccomp(ARCHES_COMPAT32),
            SECCOMP_NETWORKED = withoutUplinkUids(SECCOMP), SECCOMP_COMPAT32_NETWORKED = withoutUplinkUids(SECCOMP_COMPAT32);

    static RuntimeSpec.Seccomp seccomp(List<String> architectures) {
        List<RuntimeSpec.SyscallRule> rules = new ArrayList<>();
        rules.add(new RuntimeSpec.SyscallRule(SECCOMP_DENY, "SCMP_ACT_ERRNO", 1, null));
        // glibc falls back to clone() when clone3 says ENOSYS; clone3's flags are in memory, not filterable.
        rules.add(new RuntimeSpec.SyscallRule(List.of("clone3"), "SCMP_ACT_ERRNO", 38, null));
        // clone() may not create namespaces (user namespaces would work without any capability).
        for (long flag : NS_FLAGS) {
            rules.add(new RuntimeSpec.SyscallRule(List.of("clone"), "SCMP_ACT_ERRNO", 1,
                    List.of(new RuntimeSpec.SyscallArg(0, flag, flag, "SCMP_CMP_MASKED_EQ"))));
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
        return new RuntimeSpec.Seccomp("SCMP_ACT_ALLOW", architectures, List.copyOf(rules));
    }

    /**
     * A networked sandbox's namespace belongs to a user namespace owned by an uplink uid, and the kernel gives a process
     * whose effective uid owns a user namespace every capability in it: root in a runc sandbox (CAP_SETUID) could
     * setuid to that uid and hold CAP_NET_ADMIN over its network namespace. So no uid in the uplinks' reserved range
     * ({@link UidBlock}): setuid-family calls into it fail with EPERM (one masked compare per argument; -1, "leave
     * unchanged", is outside the range; the 32 variants exist only with the i386 ABI).
     */
    static RuntimeSpec.Seccomp withoutUplinkUids(RuntimeSpec.Seccomp base) {
        List<RuntimeSpec.SyscallRule> rules = new ArrayList<>(base.syscalls());
        // (a local, not a constant: the profiles using it are built during class initialisation)
        Map<String, Integer> uidArgs = Map.of("setuid", 1, "setuid32", 1, "setreuid", 2, "setreuid32", 2, "setresuid", 3, "setresuid32", 3);
        for (var call : new java.util.TreeMap<>(uidArgs).entrySet())
            for (int arg = 0; arg < call.getValue(); arg++)
                rules.add(errno(call.getKey(), 1, new RuntimeSpec.SyscallArg(arg, UidBlock.MASK, UidBlock.BASE, "SCMP_CMP_MASKED_EQ")));
        return new RuntimeSpec.Seccomp(base.defaultAction(), base.architectures(), List.copyOf(rules));
    }

    private static RuntimeSpec.SyscallArg cmp(int index, String op, long value) {
        return new RuntimeSpec.SyscallArg(index, value, null, op);
    }

    private static RuntimeSpec.SyscallRule errno(String call, int errno, RuntimeSpec.SyscallArg... args) {
        return new RuntimeSpec.SyscallRule(List.of(call), "SCMP_ACT_ERRNO", errno, List.of(args));
    }

    /** The {@code config.json} text of a spec. */
    static String toJson(RuntimeSpec spec) {
        return JsonWriter.toJson(spec);
    }

    static boolean memswAvailable() {
        return Files.exists(Path.of("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"));
    }
}

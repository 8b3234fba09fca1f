package dev.contree.sandbox;

import java.util.List;

/**
 * The OCI runtime spec ({@code config.json} of a bundle) as far as a sandbox uses it, written by {@link JsonWriter}.
 * Component names are the spec's JSON keys and their order the order written; a null component is left out (the
 * runtime's default applies).
 */
record RuntimeSpec(String ociVersion, Process process, Root root, String hostname, List<Mount> mounts, Linux linux) {

    /** The container's first process: contree-init, as root, which drops to the command's user itself. */
    record Process(boolean terminal, User user, List<String> args, List<String> env, String cwd,
                   Capabilities capabilities, List<Rlimit> rlimits, boolean noNewPrivileges) {}

    record User(int uid, int gid) {}

    record Capabilities(List<String> bounding, List<String> effective, List<String> permitted) {}

    record Rlimit(String type, long hard, long soft) {}

    record Root(String path, boolean readonly) {}

    record Mount(String destination, String type, String source, List<String> options) {}

    record Linux(List<Namespace> namespaces, Resources resources, String cgroupsPath, List<String> maskedPaths,
                 List<String> readonlyPaths, Seccomp seccomp) {}

    /** A namespace to create, or to join when {@code path} is set. */
    record Namespace(String type, String path) {}

    record Resources(List<DeviceRule> devices, Memory memory, Cpu cpu, Pids pids) {}

    record DeviceRule(boolean allow, String access) {}

    /** {@code swap} is memory plus swap (cgroup v1 memsw); null where the host has no memsw accounting. */
    record Memory(long limit, Long swap) {}

    record Cpu(long quota, long period) {}

    record Pids(long limit) {}

    record Seccomp(String defaultAction, List<String> architectures, List<SyscallRule> syscalls) {}

    /** Calls {@code names} fail with {@code errnoRet}; when {@code args} is set, only if every comparison holds. */
    record SyscallRule(List<String> names, String action, int errnoRet, List<SyscallArg> args) {}

    /** Compares argument {@code index}; {@code valueTwo} is the masked value of a {@code SCMP_CMP_MASKED_EQ}. */
    record SyscallArg(int index, long value, Long valueTwo, String op) {}
}

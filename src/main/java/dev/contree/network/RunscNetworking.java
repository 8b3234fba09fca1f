package dev.contree.network;

import java.util.ArrayList;
import java.util.List;

/**
 * How runsc gets a sandbox's own namespace with gVisor's user-space network stack ({@code --network=sandbox}) on
 * runsc releases with gVisor issue #10704 (Debian 12's 20221219): they take any namespace that has
 * {@code /proc/sys/net/core/rmem_default} for the host's root namespace and refuse to start, and every namespace has
 * it on current kernels. The check's purpose is to keep runsc from taking over the host's own interfaces; here the
 * server has made sure the namespace is a sandbox's own ({@link SandboxNetwork#dedicated}), so the runsc process
 * that sets the sandbox up runs in a mount namespace of its own in which an empty tmpfs hides {@code /proc/sys/net}
 * (the check then finds no file). Nothing else of runsc reads that directory with netstack; gVisor releases with the
 * fix pass the check anyway and are unaffected. The mount namespace is a slave of the host's, so the rootfs
 * overlay the server unmounts after the run goes from it too.
 */
public final class RunscNetworking {
    private RunscNetworking() {}

    private static final String SCRIPT = "mount -t tmpfs -o size=4k,mode=0555,nosuid,nodev,noexec contree-netns /proc/sys/net && exec \"$@\"";

    /** The command line that runs {@code runscArgv} (the runsc process that creates the sandbox) that way. */
    public static List<String> wrap(List<String> runscArgv) {
        List<String> a = new ArrayList<>(List.of("unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", SCRIPT, "sh"));
        a.addAll(runscArgv);
        return a;
    }
}

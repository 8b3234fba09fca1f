package dev.contree.sandbox;

import dev.contree.cancel.CancelToken;

import java.io.IOException;
import java.util.List;

/**
 * Runs one command in a fresh, isolated sandbox over a prepared root filesystem directory.
 * Implementations are thread-safe: many {@link #run} calls may proceed in parallel.
 */
public interface SandboxRuntime {

    /** Where contree-init is bind-mounted (read-only) inside every sandbox. */
    String INIT_PATH = "/.contree/init";

    /**
     * Paths that may appear in the rootfs only because a runtime created them as mount points.
     * {@code /.contree} (and everything below it) is always scratch. {@code /proc}, {@code /sys},
     * {@code /dev} and {@code /tmp} are scratch only when the run created them, i.e. when they are
     * empty directories that were not in the image: the snapshot store should drop them from the
     * upper layer in that case (and keep them if the image had them or the command wrote into
     * {@code /tmp}).
     */
    List<String> SCRATCH_PATHS = List.of("/.contree", "/proc", "/sys", "/dev", "/tmp");

    /**
     * Where a networked sandbox gets the server's resolv.conf, bound read-only: the image keeps its own file. The
     * commit of a networked run drops the mount point the runtime may have created there, as for the paths above.
     */
    String RESOLV_CONF = "/etc/resolv.conf";

    /** A path in the rootfs where the runtime mounts or creates something: a directory, or a file (a file bind). */
    record MountPoint(String path, boolean directory) {}

    /**
     * Every path in the rootfs that this runtime resolves on the host (mount targets, bind sources in the
     * rootfs). Callers make them real (no symlink, a directory where one is needed) before {@link #run};
     * {@code run} refuses a rootfs where one is not.
     */
    default java.util.List<MountPoint> rootfsMountPoints() {
        return java.util.List.of();
    }

    /** {@link #rootfsMountPoints()} of a run with ({@code network}) or without network ({@link #RESOLV_CONF}). */
    default java.util.List<MountPoint> rootfsMountPoints(boolean network) {
        return rootfsMountPoints();
    }

    /** The network mode of a networked run on this server ({@code slirp4netns}, {@code namespace}), "none" when off. */
    default String networkMode() {
        return "none";
    }

    /** "runsc" or "runc". */
    String name();

    /**
     * Runs {@code spec.argv()} in a new sandbox and waits for it. Never leaves a container, state
     * dir, cgroup or mount behind. Infrastructure problems are reported in
     * {@link SandboxResult#infraError()}; an IOException only when the run could not be set up at all.
     */
    SandboxResult run(SandboxSpec spec, SandboxListener listener, CancelToken cancel) throws IOException;

    default SandboxResult run(SandboxSpec spec) throws IOException {
        return run(spec, SandboxListener.NONE, CancelToken.none());
    }

    /** Removes containers, bundles and cgroups left behind by a crashed server. Returns how many containers. */
    int cleanupStale() throws IOException;
}

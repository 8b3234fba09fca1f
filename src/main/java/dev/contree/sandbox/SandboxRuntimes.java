package dev.contree.sandbox;

import java.io.IOException;
import java.io.UncheckedIOException;

/** Factory of the configured runtime. */
public final class SandboxRuntimes {
    private SandboxRuntimes() {}

    /**
     * How the vm runtime picks its accelerator: {@code CONTREE_VM_ACCEL} (or the system property contree.vm.accel),
     * "auto" (default: KVM if a probe guest runs under it, else TCG with a warning), "kvm" or "tcg".
     */
    public static String vmAccelerator() {
        String v = System.getProperty("contree.vm.accel", System.getenv("CONTREE_VM_ACCEL"));
        return v == null || v.isBlank() ? "auto" : v;
    }

    public static SandboxRuntime create(RuntimeConfig cfg) {
        try {
            if (cfg.kind() == RuntimeConfig.Kind.VM) return new VmSandboxRuntime(cfg, vmAccelerator());
            return new OciSandboxRuntime(cfg);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot set up sandbox runtime " + cfg.kind(), e);
        }
    }
}

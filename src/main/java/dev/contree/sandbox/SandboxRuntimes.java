package dev.contree.sandbox;

import java.io.IOException;
import java.io.UncheckedIOException;

/** Factory of the configured runtime. */
public final class SandboxRuntimes {
    private SandboxRuntimes() {}

    public static SandboxRuntime create(RuntimeConfig cfg) {
        try {
            return new OciSandboxRuntime(cfg);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot set up sandbox runtime " + cfg.kind(), e);
        }
    }
}

package dev.contree.network;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The deprecated {@code --network-namespace PATH}: every networked sandbox joins one namespace the operator
 * prepared, so they can reach each other and nothing here enforces an egress policy. Kept so existing setups keep
 * working; {@code --network on} replaces it.
 */
final class SharedNamespace implements SandboxNetworks {
    private final Path path;

    SharedNamespace(Path path) {
        this.path = path;
    }

    @Override public String mode() { return "namespace"; }

    @Override public boolean dedicated() { return false; }

    @Override
    public SandboxNetwork attach(String sandboxId, double cpus) {
        return new SandboxNetwork() {
            @Override public Path namespace() { return path; }
            @Override public Path resolvConf() { return null; }
            @Override public boolean dedicated() { return false; }
            @Override public NetworkUsage usage() { return NetworkUsage.UNKNOWN; }
            @Override public void close() { }
        };
    }

    @Override public int cleanupStale() throws IOException { return 0; }

    @Override public void close() { }
}

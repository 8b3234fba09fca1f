package dev.contree.server;

import java.nio.file.Path;

/**
 * Everything an operator can set. Defaults suit one machine; see docs/configuration.md.
 *
 * @param host                  address to bind (loopback by default)
 * @param port                  TCP port (0 picks a free one, for tests)
 * @param dataDir               database, blobs, layers and runtime state live here
 * @param runtime               sandbox runtime: {@code runsc} or {@code runc}
 * @param runscPlatform         gVisor platform: {@code ptrace} (works everywhere), {@code kvm} or {@code systrap}
 * @param maxUploadBytes        largest file accepted by {@code POST /v1/files}
 * @param maxJsonBytes          largest JSON request body
 * @param instanceMaxTimeout    longest execution timeout a client may ask for, seconds
 * @param instanceConcurrency   executions run at once; the rest queue as PENDING
 * @param importMaxTimeout      longest import timeout, seconds
 * @param allowNetwork          whether executions may ask for {@code networking.enabled}
 * @param layerPoolBytes        size of the sparse btrfs image holding layers (when the data dir is not on btrfs)
 * @param insecureRegistries    registry hosts ({@code host} or {@code host:port}) that may be pulled over plain HTTP
 *                              besides loopback; default from {@code CONTREE_INSECURE_REGISTRIES} (comma separated)
 */
public record ServerConfig(String host, int port, Path dataDir, String runtime, String runscPlatform,
                           long maxUploadBytes, long maxJsonBytes, int instanceMaxTimeout, int instanceConcurrency,
                           int importMaxTimeout, boolean allowNetwork, long layerPoolBytes,
                           java.util.Set<String> insecureRegistries) {

    public ServerConfig {
        insecureRegistries = insecureRegistries == null ? java.util.Set.of() : java.util.Set.copyOf(insecureRegistries);
    }

    public static ServerConfig defaults(Path dataDir) {
        return new ServerConfig("127.0.0.1", 8080, dataDir, "runsc", "ptrace",
                8L << 30, 256L << 20, 3600, Math.max(2, Runtime.getRuntime().availableProcessors() * 2), 3600,
                false, 256L << 30, insecureRegistriesFromEnv());
    }

    public ServerConfig withListen(String host, int port) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, allowNetwork, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withRuntime(String runtime, String runscPlatform) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, allowNetwork, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withLimits(long maxUploadBytes, long maxJsonBytes, int instanceConcurrency) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, allowNetwork, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withNetwork(boolean allow) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, allow, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withInsecureRegistries(java.util.Set<String> hosts) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, allowNetwork, layerPoolBytes, hosts);
    }

    private static java.util.Set<String> insecureRegistriesFromEnv() {
        String v = System.getenv("CONTREE_INSECURE_REGISTRIES");
        if (v == null || v.isBlank()) return java.util.Set.of();
        return java.util.Arrays.stream(v.split(",")).map(String::strip).filter(s -> !s.isEmpty())
                .collect(java.util.stream.Collectors.toUnmodifiableSet());
    }
}

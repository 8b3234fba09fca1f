package dev.contree.server;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

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
 * @param networkNamespace      a prepared network namespace that executions asking for {@code networking.enabled} join;
 *                              null refuses networking
 * @param layerPoolBytes        size of the sparse btrfs image holding layers (when the data dir is not on btrfs)
 * @param insecureRegistries    registry hosts ({@code host} or {@code host:port}) that may be pulled over plain HTTP
 *                              besides loopback; default from {@code CONTREE_INSECURE_REGISTRIES} (comma separated)
 */
public record ServerConfig(String host, int port, Path dataDir, String runtime, String runscPlatform,
                           long maxUploadBytes, long maxJsonBytes, int instanceMaxTimeout, int instanceConcurrency,
                           int importMaxTimeout, Path networkNamespace, long layerPoolBytes, Set<String> insecureRegistries) {

    public ServerConfig {
        insecureRegistries = insecureRegistries == null ? Set.of() : Set.copyOf(insecureRegistries);
    }

    public static ServerConfig defaults(Path dataDir) {
        return new ServerConfig("127.0.0.1", 8080, dataDir, "runsc", "ptrace",
                8L << 30, 256L << 20, 3600, Math.max(2, Runtime.getRuntime().availableProcessors() * 2), 3600,
                null, 256L << 30, insecureRegistriesFromEnv());
    }

    public ServerConfig withListen(String host, int port) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, networkNamespace, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withRuntime(String runtime, String runscPlatform) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, networkNamespace, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withLimits(long maxUploadBytes, long maxJsonBytes, int instanceConcurrency) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, networkNamespace, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withNetwork(Path namespace) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, namespace, layerPoolBytes, insecureRegistries);
    }

    public ServerConfig withInsecureRegistries(Set<String> hosts) {
        return new ServerConfig(host, port, dataDir, runtime, runscPlatform, maxUploadBytes, maxJsonBytes,
                instanceMaxTimeout, instanceConcurrency, importMaxTimeout, networkNamespace, layerPoolBytes, hosts);
    }

    private static Set<String> insecureRegistriesFromEnv() {
        String v = System.getenv("CONTREE_INSECURE_REGISTRIES");
        if (v == null || v.isBlank()) return Set.of();
        return Arrays.stream(v.split(",")).map(String::strip).filter(s -> !s.isEmpty()).collect(Collectors.toUnmodifiableSet());
    }
}

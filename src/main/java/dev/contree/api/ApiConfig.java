package dev.contree.api;

import java.nio.file.Path;

/**
 * The settings the HTTP layer acts on: where to listen, how large a request may be, and the limits it enforces on
 * requests and reports in {@code GET /v1/whoami}. The server builds it from its own configuration.
 *
 * @param dataDir        never shown to clients: error messages have it scrubbed ({@link HostPaths})
 * @param maxJsonBytes   largest JSON request body
 * @param limits         what {@code whoami} reports; {@code maxUploadBytes} and the timeouts are also enforced here
 */
public record ApiConfig(String host, int port, Path dataDir, long maxJsonBytes, Limits limits) {

    /**
     * The server's limits as a client sees them.
     *
     * @param maxAccountBytes {@link Long#MAX_VALUE} = unlimited (then not reported)
     */
    public record Limits(int instanceMaxTimeout, int instanceConcurrency, int accountConcurrency, int importMaxTimeout,
                         long maxUploadBytes, long instanceMemoryBytes, long instancePids, double instanceCpus,
                         long maxImportBytes, long maxAccountBytes) {}
}

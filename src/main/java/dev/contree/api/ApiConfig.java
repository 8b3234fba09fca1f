package dev.contree.api;

import java.nio.file.Path;
import java.util.function.IntSupplier;

/**
 * The settings the HTTP layer acts on: where to listen, how large a request may be, and the limits it enforces on
 * requests and reports in {@code GET /v1/whoami}. The server builds it from its own configuration.
 *
 * @param dataDir                never shown to clients: error messages have it scrubbed ({@link HostPaths})
 * @param maxJsonBytes           largest JSON request body
 * @param limits                 what {@code whoami} reports; {@code maxUploadBytes} and the timeouts are also enforced here
 * @param instanceConcurrencyNow the executions that could run at once right now (the host's admission bounded by the
 *                               configured concurrency): {@code whoami}'s {@code instance_max_concurrency}
 */
public record ApiConfig(String host, int port, Path dataDir, long maxJsonBytes, Limits limits, IntSupplier instanceConcurrencyNow) {

    public ApiConfig {
        if (instanceConcurrencyNow == null) {
            int fixed = limits.instanceConcurrency();
            instanceConcurrencyNow = () -> fixed;
        }
    }

    /** Limits as configured, {@code instance_max_concurrency} reported as the configured bound. */
    public ApiConfig(String host, int port, Path dataDir, long maxJsonBytes, Limits limits) {
        this(host, port, dataDir, maxJsonBytes, limits, null);
    }

    public ApiConfig withInstanceConcurrencyNow(IntSupplier now) {
        return new ApiConfig(host, port, dataDir, maxJsonBytes, limits, now);
    }

    /**
     * The server's limits as a client sees them.
     *
     * @param maxAccountBytes {@link Long#MAX_VALUE} = unlimited (then not reported)
     */
    public record Limits(int instanceMaxTimeout, int instanceConcurrency, int accountConcurrency, int importMaxTimeout,
                         long maxUploadBytes, long instanceMemoryBytes, long instancePids, double instanceCpus,
                         long maxImportBytes, long maxAccountBytes) {

        /** The same limits with {@code instanceConcurrency} as the host admits it now. */
        public Limits withInstanceConcurrency(int n) {
            return new Limits(instanceMaxTimeout, n, accountConcurrency, importMaxTimeout, maxUploadBytes, instanceMemoryBytes,
                    instancePids, instanceCpus, maxImportBytes, maxAccountBytes);
        }
    }
}

package dev.contree.registry;

import java.time.Duration;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Registry client settings.
 *
 * @param insecureHosts   hosts ({@code host} or {@code host:port}) where plain HTTP is allowed in addition to
 *                        loopback. HTTPS is still tried first for them.
 * @param connectTimeout  TCP/TLS connect timeout
 * @param requestTimeout  time to wait for response headers of one request (bodies are streamed without a deadline)
 * @param userAgent       User-Agent header
 * @param os              platform picked from an index ({@code linux})
 * @param architecture    platform picked from an index ({@code amd64})
 */
public record RegistryConfig(Set<String> insecureHosts, Duration connectTimeout, Duration requestTimeout,
                             String userAgent, String os, String architecture) {
    public static final String DEFAULT_USER_AGENT = "contree-registry-client/0.1";

    public RegistryConfig {
        insecureHosts = insecureHosts == null ? Set.of()
            : insecureHosts.stream().map(h -> h.strip().toLowerCase(Locale.ROOT)).collect(Collectors.toUnmodifiableSet());
        connectTimeout = connectTimeout == null ? Duration.ofSeconds(15) : connectTimeout;
        requestTimeout = requestTimeout == null ? Duration.ofSeconds(60) : requestTimeout;
        userAgent = userAgent == null || userAgent.isBlank() ? DEFAULT_USER_AGENT : userAgent;
        os = os == null ? "linux" : os;
        architecture = architecture == null ? "amd64" : architecture;
    }

    public static RegistryConfig defaults() {
        return new RegistryConfig(Set.of(), null, null, null, null, null);
    }

    public RegistryConfig withInsecureHosts(Set<String> hosts) {
        return new RegistryConfig(hosts, connectTimeout, requestTimeout, userAgent, os, architecture);
    }

    public RegistryConfig withTimeouts(Duration connect, Duration request) {
        return new RegistryConfig(insecureHosts, connect, request, userAgent, os, architecture);
    }

    /** Plain HTTP allowed to {@code hostPort}: loopback, or listed (by host or host:port) in {@link #insecureHosts}. */
    public boolean plainHttpAllowed(String hostPort) {
        String hp = hostPort.toLowerCase(Locale.ROOT);
        String host = ImageReference.hostOf(hp);
        return ImageReference.isLoopbackHost(host) || insecureHosts.contains(hp) || insecureHosts.contains(host);
    }
}

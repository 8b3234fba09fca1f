package dev.contree.network;

/**
 * Bytes a sandbox's interface moved: what it sent and what it received, link-layer frames included. -1 when the
 * stack cannot attribute them to one sandbox (a namespace several share). {@code uplinkCpuMillis}: the CPU time the
 * sandbox's uplink (holder and slirp4netns, its cgroup's) used, ms; null where nothing measures it.
 */
public record NetworkUsage(long bytesSent, long bytesReceived, Long uplinkCpuMillis) {
    public static final NetworkUsage UNKNOWN = new NetworkUsage(-1, -1, null);

    public NetworkUsage(long bytesSent, long bytesReceived) {
        this(bytesSent, bytesReceived, null);
    }
}

package dev.contree.network;

/**
 * Bytes a sandbox's interface moved: what it sent and what it received, link-layer frames included. -1 when the
 * stack cannot attribute them to one sandbox (a namespace several share).
 */
public record NetworkUsage(long bytesSent, long bytesReceived) {
    public static final NetworkUsage UNKNOWN = new NetworkUsage(-1, -1);
}

package dev.contree.registry;

import java.io.IOException;

/**
 * A registry failure. {@link #getMessage()} is meant to be shown to the user as the operation error; it never contains
 * a password or token.
 */
public class RegistryException extends Exception {
    public enum Kind {
        /** 401/403, wrong or missing credentials, token endpoint refused. */
        AUTH,
        /** Unknown repository, tag, manifest or blob. */
        NOT_FOUND,
        /** Content does not match its digest or declared size. */
        DIGEST_MISMATCH,
        /** The registry answered something we cannot use (bad JSON, unexpected status, too large, ...). */
        PROTOCOL,
        /** Valid but unsupported content: Docker schema 1, no linux/amd64 entry, unknown layer media type. */
        UNSUPPORTED,
        /** Connection failures, timeouts, 5xx and 429 answers. Usually worth a retry. */
        NETWORK,
        /** A plain-HTTP request to a host that is neither loopback nor configured as insecure (refused before sending). */
        INSECURE,
        /** The caller's {@link dev.contree.cancel.CancelToken} was cancelled (or the thread interrupted). */
        CANCELLED
    }

    private final Kind kind;

    public RegistryException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public RegistryException(Kind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /**
     * Unwraps a {@link RegistryException} thrown through an {@link java.io.InputStream} returned by
     * {@link RegistryClient#openBlob}; other I/O errors become {@link Kind#NETWORK}.
     */
    public static RegistryException from(IOException e) {
        if (e instanceof BlobStream.BlobIOException b) return b.registryException();
        return new RegistryException(Kind.NETWORK, "network error: " + e.getMessage(), e);
    }
}

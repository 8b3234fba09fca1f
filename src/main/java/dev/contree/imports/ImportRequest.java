package dev.contree.imports;

import dev.contree.operations.OperationRequest;

/**
 * A validated import request.
 *
 * @param url      what to import: a registry reference ({@code docker://…}, {@code oci://…}, bare name) or an
 *                 uploaded file ({@code rootfs+file://<uuid>}, {@code oci-archive+file://<uuid>}, {@code docker-archive+file://<uuid>})
 * @param username registry user, empty for anonymous
 * @param password registry password or token (never echoed)
 * @param tag      tag to put on the imported image, or null
 */
public record ImportRequest(String url, String username, String password, String tag, int timeoutSeconds) implements OperationRequest {
    public static final int DEFAULT_TIMEOUT = 300;
    /** What a recorded request holds instead of a password that was given. */
    public static final String PASSWORD_NOT_KEPT = "<MASKED>";

    /** The request as its operation records it: a given password is replaced by {@link #PASSWORD_NOT_KEPT}. */
    public ImportRequest withoutPassword() {
        return new ImportRequest(url, username, password.isEmpty() ? "" : PASSWORD_NOT_KEPT, tag, timeoutSeconds);
    }

    /** Whether the request named a registry user or password. */
    public boolean hasCredentials() {
        return !username.isEmpty() || !password.isEmpty();
    }
}

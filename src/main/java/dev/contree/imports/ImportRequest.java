package dev.contree.imports;

/**
 * A validated import request.
 *
 * @param url      what to import: a registry reference ({@code docker://…}, {@code oci://…}, bare name) or an
 *                 uploaded file ({@code rootfs+file://<uuid>}, {@code oci-archive+file://<uuid>}, {@code docker-archive+file://<uuid>})
 * @param username registry user, empty for anonymous
 * @param password registry password or token (never echoed)
 * @param tag      tag to put on the imported image, or null
 */
public record ImportRequest(String url, String username, String password, String tag, int timeoutSeconds) {
    public static final int DEFAULT_TIMEOUT = 300;
}

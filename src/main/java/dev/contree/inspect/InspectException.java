package dev.contree.inspect;

/**
 * A client mistake while inspecting an image (bad path, missing entry, wrong type); the API answers with a status
 * for its {@link Kind}. Host I/O failures are {@link java.io.IOException}s instead: those are server errors.
 */
public final class InspectException extends RuntimeException {

    public enum Kind {
        /** ENOENT: nothing at that path. */
        NOT_FOUND,
        /** ENOTDIR: a directory was required (list) or a non-final component is not one. */
        NOT_A_DIRECTORY,
        /** EISDIR: a regular file was required but the path is a directory. */
        IS_A_DIRECTORY,
        /** A regular file was required but the path is a device, fifo, socket. */
        NOT_A_REGULAR_FILE,
        /** NUL byte, longer than 4096 bytes, or otherwise not a path. */
        INVALID_PATH,
        /** A malformed query argument (e.g. a regex that does not compile). */
        INVALID_ARGUMENT,
        /** ELOOP: more than 40 symlinks while resolving. */
        LOOP,
        /** A server limit on inspect work (entries, bytes, time) was hit; the message names it. */
        TOO_LARGE,
        /** The client went away; nobody reads the answer. */
        CANCELLED
    }

    private final Kind kind;
    private final String path;

    public InspectException(Kind kind, String path, String message) {
        super(message);
        this.kind = kind;
        this.path = path;
    }

    public Kind kind() { return kind; }

    /** The image path the error is about (already sanitised for display), or null. */
    public String path() { return path; }
}

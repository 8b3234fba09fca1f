package dev.contree.operations;

/** A request to start an operation, refused before anything ran; the API answers with a status for its {@link Reason}. */
public final class RequestRejected extends Exception {
    /** Why a request was refused. */
    public enum Reason {
        /** Something the request names does not exist (for this account). */
        NOT_FOUND,
        /** The request is malformed or contradicts what it names. */
        INVALID,
        /** The server's configuration or the account's limits do not allow it. */
        FORBIDDEN,
        /** It conflicts with the current state. */
        CONFLICT,
        /** What it names is not ready for it yet (an instance still starting); retry soon. */
        NOT_YET,
        /** The server holds too much of this already; retry later. */
        TOO_MANY,
        /** The server could not check or hold the request right now. */
        UNAVAILABLE
    }

    private final Reason reason;
    private final int retryAfterSeconds;

    public RequestRejected(Reason reason, String message) {
        this(reason, message, reason == Reason.TOO_MANY ? 1 : 0);
    }

    /** @param retryAfterSeconds when a retry may succeed (the HTTP {@code Retry-After}); 0 = no hint */
    public RequestRejected(Reason reason, String message, int retryAfterSeconds) {
        super(message, null, false, false);
        this.reason = reason;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public int retryAfterSeconds() {
        return retryAfterSeconds;
    }

    public Reason reason() {
        return reason;
    }
}

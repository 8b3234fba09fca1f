package dev.contree.operations;

/** A request to start an operation, refused before anything ran; {@code status} is the HTTP status to answer with. */
public final class RequestRejected extends Exception {
    private final int status;

    public RequestRejected(int status, String message) {
        super(message, null, false, false);
        this.status = status;
    }

    public int status() {
        return status;
    }
}

package dev.contree.api;

import dev.contree.inspect.InspectException;
import dev.contree.operations.RequestRejected;

/** A request the server refuses: rendered as {@code {"error": message, "status": status}}. */
public final class ApiException extends RuntimeException {
    private final int status;

    public ApiException(int status, String message) {
        super(message, null, false, false);
        this.status = status;
    }

    public int status() {
        return status;
    }

    public static ApiException badRequest(String message) { return new ApiException(400, message); }
    public static ApiException notFound(String message) { return new ApiException(404, message); }
    public static ApiException conflict(String message) { return new ApiException(409, message); }
    public static ApiException unprocessable(String message) { return new ApiException(422, message); }
    public static ApiException tooLarge(String message) { return new ApiException(413, message); }

    /** The answer to a request the domain refused. */
    public static ApiException rejected(RequestRejected e) {
        int status = switch (e.reason()) {
            case NOT_FOUND -> 404;
            case INVALID -> 400;
            case FORBIDDEN -> 403;
            case CONFLICT -> 409;
            case TOO_MANY -> 429;
            case NOT_YET -> 425;
            case UNAVAILABLE -> 503;
        };
        return new ApiException(status, e.getMessage());
    }

    /**
     * The answer to a request the domain refused, with {@code Retry-After} on {@code ctx} when the refusal says when to
     * come back (a full queue, a full stdin spool).
     */
    public static ApiException rejected(io.javalin.http.Context ctx, RequestRejected e) {
        if (e.retryAfterSeconds() > 0) ctx.header("Retry-After", Integer.toString(e.retryAfterSeconds()));
        return rejected(e);
    }

    /** The answer to an inspect request the image's files refused. */
    public static ApiException inspect(InspectException e) {
        int status = switch (e.kind()) {
            case NOT_FOUND -> 404;
            case NOT_A_DIRECTORY, IS_A_DIRECTORY, NOT_A_REGULAR_FILE, LOOP -> 422;
            case INVALID_PATH, INVALID_ARGUMENT, CANCELLED -> 400;
            case TOO_LARGE -> 413;
        };
        return new ApiException(status, e.getMessage());
    }
}

package dev.contree.api;

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
}

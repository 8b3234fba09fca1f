package dev.contree.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

import java.nio.ByteBuffer;

/**
 * Errors Jetty answers itself, before a request reaches a route (unparseable request line, bad
 * Content-Length, ambiguous or invalid URI, headers too large): the same
 * {@code {"error": "...", "status": N}} JSON as every other error, not Jetty's HTML page.
 */
final class JsonErrorHandler extends ErrorHandler {
    private static final HttpField JSON = new HttpField(HttpHeader.CONTENT_TYPE, "application/json");

    static byte[] body(int status, String message) {
        var o = Json.object();
        o.put("error", message == null || message.isBlank() ? HttpStatus.getMessage(status) : HostPaths.scrub(message));
        o.put("status", status);
        try {
            return Json.MAPPER.writeValueAsBytes(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Every method gets the JSON error (Jetty's default leaves PATCH, DELETE, … with an empty body). */
    @Override
    public boolean errorPageForMethod(String method) {
        return true;
    }

    @Override
    public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
        fields.put(JSON);
        return ByteBuffer.wrap(body(status, reason));
    }

    @Override
    protected void generateResponse(Request request, Response response, int code, String message, Throwable cause, Callback callback) {
        response.getHeaders().put(JSON);
        // Jetty hands a request it could not parse (bad URI, URI too long) to us as "BAD /badMessage": the
        // method is lost, so a HEAD would get this body. Close the connection so no client misreads it.
        if ("BAD".equals(request.getMethod())) response.getHeaders().put(HttpHeader.CONNECTION, "close");
        boolean head = "HEAD".equals(request.getMethod());
        response.write(true, head ? ByteBuffer.allocate(0) : ByteBuffer.wrap(body(code, message)), callback);
    }
}

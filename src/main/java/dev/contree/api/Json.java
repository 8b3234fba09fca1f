package dev.contree.api;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;

/**
 * JSON in and out of handlers: bounded, strict about shape, clear about what is wrong. Wire shapes are records
 * whose components are named as in Java and written snake_case, in declaration order.
 */
public final class Json {
    public static final ObjectMapper MAPPER = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            // '{"tag":"x"}}' or two objects in a row is malformed, not the first object.
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    static {
        // No per-string cap beyond the body's own (readObject's maxBytes, 256 MiB by default): Jackson's
        // default of 20 M chars rejected stdin over ~14 MiB (base64) although the body limit allows 256 MiB.
        MAPPER.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(64)
                .maxStringLength(Integer.MAX_VALUE).build());
    }

    private Json() {}

    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /** A wire record as a JSON object, for bodies that add fields around it. */
    static ObjectNode tree(Record shape) {
        return MAPPER.valueToTree(shape);
    }

    /**
     * Bodies above this go out chunked, without Content-Length: the older MCP client refuses any JSON
     * response that declares more than 64 KiB (big operation results, long listings).
     */
    static final int CHUNKED_ABOVE = 64 * 1024;

    /** Writes {@code body} as the JSON response. */
    public static void send(Context ctx, int status, JsonNode body) {
        byte[] bytes;
        try {
            bytes = MAPPER.writeValueAsBytes(body);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        ctx.status(status).contentType("application/json");
        if (bytes.length > CHUNKED_ABOVE) ctx.result(new java.io.ByteArrayInputStream(bytes));
        else ctx.result(bytes);
    }

    /** Reads the request body as a JSON object of at most {@code maxBytes}. */
    public static ObjectNode readObject(Context ctx, long maxBytes) {
        byte[] body;
        try (InputStream in = ctx.req().getInputStream()) {
            body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
        } catch (IOException e) {
            throw ApiException.badRequest("could not read request body: " + e.getMessage());
        }
        if (body.length > maxBytes) throw ApiException.tooLarge("request body exceeds " + maxBytes + " bytes");
        if (body.length == 0) throw ApiException.badRequest("request body must be a JSON object");
        JsonNode node;
        try {
            node = MAPPER.readTree(body);
        } catch (IOException e) {
            throw ApiException.badRequest("malformed JSON: " + firstLine(e.getMessage()));
        }
        if (node == null || !node.isObject()) throw ApiException.badRequest("request body must be a JSON object");
        return (ObjectNode) node;
    }

    private static String firstLine(String s) {
        if (s == null) return "invalid";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }
}

package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/** Typed access to request JSON fields; a missing field gives the default, a wrong type a 400. */
public final class Fields {
    private Fields() {}

    private static JsonNode present(ObjectNode o, String name) {
        JsonNode v = o.get(name);
        return v == null || v.isNull() ? null : v;
    }

    public static String string(ObjectNode o, String name, String fallback) {
        JsonNode v = present(o, name);
        if (v == null) return fallback;
        if (!v.isTextual()) throw ApiException.badRequest("'" + name + "' must be a string");
        return v.textValue();
    }

    public static String requiredString(ObjectNode o, String name) {
        String s = string(o, name, null);
        if (s == null || s.isEmpty()) throw ApiException.badRequest("'" + name + "' is required");
        return s;
    }

    public static boolean bool(ObjectNode o, String name, boolean fallback) {
        JsonNode v = present(o, name);
        if (v == null) return fallback;
        if (!v.isBoolean()) throw ApiException.badRequest("'" + name + "' must be a boolean");
        return v.booleanValue();
    }

    public static long integer(ObjectNode o, String name, long fallback, long min, long max) {
        JsonNode v = present(o, name);
        if (v == null) return fallback;
        if (!v.isIntegralNumber() && !(v.isNumber() && v.asDouble() == Math.rint(v.asDouble()))) {
            throw ApiException.badRequest("'" + name + "' must be an integer");
        }
        if (!v.canConvertToLong()) throw ApiException.badRequest("'" + name + "' is out of range");
        long n = v.asLong();
        if (n < min || n > max) throw ApiException.badRequest("'" + name + "' must be between " + min + " and " + max);
        return n;
    }

    public static ObjectNode object(ObjectNode o, String name) {
        JsonNode v = present(o, name);
        if (v == null) return null;
        if (!v.isObject()) throw ApiException.badRequest("'" + name + "' must be an object");
        return (ObjectNode) v;
    }
}

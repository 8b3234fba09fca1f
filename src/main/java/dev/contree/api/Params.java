package dev.contree.api;

import dev.contree.store.Page;
import dev.contree.store.TimeRange;
import io.javalin.http.Context;

import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Query parameters shared by the listing routes: paging, time filters, booleans, UUIDs. */
public final class Params {
    private static final Pattern UUID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    private static final Pattern RELATIVE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([smhdw]?)");

    private Params() {}

    public static Page page(Context ctx) {
        int limit = intParam(ctx, "limit", 100);
        int offset = intParam(ctx, "offset", 0);
        if (limit < 1 || limit > Page.MAX_LIMIT) throw ApiException.badRequest("limit must be between 1 and " + Page.MAX_LIMIT);
        if (offset < 0) throw ApiException.badRequest("offset must be >= 0");
        return new Page(limit, offset);
    }

    private static int intParam(Context ctx, String name, int fallback) {
        String v = ctx.queryParam(name);
        if (v == null || v.isEmpty()) return fallback;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest(name + " must be an integer, got '" + v + "'");
        }
    }

    public static TimeRange timeRange(Context ctx) {
        return new TimeRange(time(ctx, "since"), time(ctx, "until"));
    }

    /** ISO 8601 (zone optional, UTC assumed), relative {@code 15m}/{@code 2h}/{@code 3d}/{@code 1w}, or bare seconds ago. */
    static Instant time(Context ctx, String name) {
        Instant t = parseTime(ctx, name);
        // Stored times are microseconds since the epoch in a long: a year like +999999999 would overflow.
        if (t != null && (t.isBefore(MIN_TIME) || t.isAfter(MAX_TIME))) {
            throw ApiException.badRequest(name + " must be between years 0 and 9999");
        }
        return t;
    }

    private static final Instant MIN_TIME = Instant.parse("0000-01-01T00:00:00Z");
    private static final Instant MAX_TIME = Instant.parse("9999-12-31T23:59:59.999999Z");

    private static Instant parseTime(Context ctx, String name) {
        String v = ctx.queryParam(name);
        if (v == null || v.isBlank()) return null;
        v = v.trim();
        Matcher m = RELATIVE.matcher(v);
        if (m.matches()) {
            double amount = Double.parseDouble(m.group(1));
            long unit = switch (m.group(2)) {
                case "m" -> 60;
                case "h" -> 3600;
                case "d" -> 86400;
                case "w" -> 7 * 86400;
                default -> 1;
            };
            return Instant.now().minus(Duration.ofNanos((long) (amount * unit * 1e9)));
        }
        try {
            return OffsetDateTime.parse(v.replace(' ', 'T')).toInstant();
        } catch (DateTimeParseException e) {
            try {
                return LocalDateTime.parse(v.replace(' ', 'T')).toInstant(ZoneOffset.UTC);
            } catch (DateTimeParseException e2) {
                throw ApiException.badRequest(name + " must be an ISO 8601 time or a relative age like 15m, 2h, 3d; got '" + v + "'");
            }
        }
    }

    /** {@code 1/true/yes} or {@code 0/false/no}; null when absent or empty. */
    public static Boolean bool(Context ctx, String name) {
        String v = ctx.queryParam(name);
        if (v == null || v.isEmpty()) return null;
        return switch (v.toLowerCase()) {
            case "1", "true", "yes", "on" -> true;
            case "0", "false", "no", "off" -> false;
            default -> throw ApiException.badRequest(name + " must be 1 or 0, got '" + v + "'");
        };
    }

    /** A value that must be a canonical UUID (any case); returned lowercase, 400 otherwise. */
    public static String uuid(String value, String what) {
        String v = value == null ? null : value.toLowerCase(java.util.Locale.ROOT);
        if (v == null || !UUID.matcher(v).matches()) {
            throw ApiException.badRequest("invalid " + what + " id '" + value + "': expected a UUID");
        }
        return v;
    }

    public static boolean isUuid(String value) {
        return value != null && UUID.matcher(value).matches();
    }
}

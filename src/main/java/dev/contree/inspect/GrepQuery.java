package dev.contree.inspect;

import java.time.Duration;
import java.util.List;

/**
 * A grep over an image (API §3.6 grep). {@code patterns}: RE2 regexes (re2j), a line matches if any
 * does. {@code paths}: files or directories (default {@code /}). {@code globs}: file-name globs,
 * {@code !glob} excludes (also prunes directories). {@code maxCount}: matching lines per file
 * (0 = unlimited). {@code maxTotal}: matching lines overall. {@code timeout}: after it the search
 * stops with {@code truncated=true}.
 */
public record GrepQuery(List<String> patterns, List<String> paths, List<String> globs,
                        int maxCount, int maxTotal, CaseMode caseMode, Duration timeout) {

    public static final int DEFAULT_MAX_TOTAL = 1000;
    /** The largest max_total a client may ask for (the answer must stay bounded). */
    public static final int MAX_MAX_TOTAL = 100_000;
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

    public enum CaseMode {
        SENSITIVE, INSENSITIVE, SMART;

        /** Parses the API's {@code case} value (null/empty = sensitive). */
        public static CaseMode parse(String s) {
            if (s == null || s.isEmpty()) return SENSITIVE;
            return switch (s.toLowerCase(java.util.Locale.ROOT)) {
                case "sensitive" -> SENSITIVE;
                case "insensitive" -> INSENSITIVE;
                case "smart" -> SMART;
                default -> throw new InspectException(InspectException.Kind.INVALID_ARGUMENT, null,
                        "case must be sensitive, insensitive or smart");
            };
        }
    }

    public GrepQuery {
        patterns = List.copyOf(patterns);
        paths = paths == null || paths.isEmpty() ? List.of("/") : List.copyOf(paths);
        globs = globs == null ? List.of() : List.copyOf(globs);
        if (patterns.isEmpty()) throw new InspectException(InspectException.Kind.INVALID_ARGUMENT, null, "pattern is required");
        if (maxCount < 0 || maxTotal < 0) throw new InspectException(InspectException.Kind.INVALID_ARGUMENT, null, "max_count and max_total must be >= 0");
        if (maxTotal == 0) maxTotal = DEFAULT_MAX_TOTAL;
        if (caseMode == null) caseMode = CaseMode.SENSITIVE;
        if (timeout == null) timeout = DEFAULT_TIMEOUT;
    }

    /** Defaults for everything but the patterns. */
    public static GrepQuery of(String... patterns) {
        return new GrepQuery(List.of(patterns), List.of(), List.of(), 0, DEFAULT_MAX_TOTAL, CaseMode.SENSITIVE, DEFAULT_TIMEOUT);
    }
}

package dev.contree.inspect;

import java.util.List;

/** API §2.13 shape: {@code path} is the searched path as given (first one), matches in walk order. */
public record GrepResult(List<String> patterns, List<Match> matches, boolean truncated) {

    /** {@code path}: absolute image path; {@code lineText} keeps its trailing newline if any. */
    public record Match(String path, long lineNumber, String lineText, List<Submatch> submatches) {}

    /** Byte offsets into the line's UTF-8 bytes, end exclusive. */
    public record Submatch(int start, int end) {}
}

package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import com.google.re2j.Matcher;
import com.google.re2j.Pattern;
import com.google.re2j.PatternSyntaxException;

/**
 * One grep run over a {@link MergedView}; see {@link GrepQuery} and docs/inspect.md. Patterns are RE2
 * (re2j): matching is linear in the line length whatever the pattern, so {@code (a|aa)*c} over a long
 * line costs what any pattern costs; RE2 has no backreferences or look-around (400).
 */
final class Grep {
    static final int BINARY_SNIFF = 8192;
    /** Lines longer than this are matched on their first MAX_LINE bytes only. */
    static final int MAX_LINE = 1 << 20;
    /** Total line_text in one answer; past it the result is truncated (the answer stays bounded). */
    static final long MAX_RESPONSE_TEXT = 8L << 20;
    /** What one submatch costs against {@link #MAX_RESPONSE_TEXT} (its JSON object). */
    static final long SUBMATCH_COST = 32;

    private final MergedView view;
    private final GrepQuery q;
    private final Budget budget;
    private long responseText;
    private final List<Pattern> patterns = new ArrayList<>();
    private final List<PathMatcher> includes = new ArrayList<>();
    private final List<PathMatcher> excludes = new ArrayList<>();
    private final List<Boolean> includeHasSlash = new ArrayList<>();
    private final List<Boolean> excludeHasSlash = new ArrayList<>();
    private final long deadlineNanos;
    private final List<GrepResult.Match> matches = new ArrayList<>();
    private boolean truncated;

    /** Thrown to unwind the walk when max_total or the deadline is hit. */
    private static final class Stop extends RuntimeException {
        Stop() { super(null, null, false, false); }
    }

    Grep(MergedView view, GrepQuery q, Budget budget) {
        this.view = view;
        this.q = q;
        this.budget = budget;
        this.deadlineNanos = System.nanoTime() + q.timeout().toNanos();
        boolean insensitive = switch (q.caseMode()) {
            case SENSITIVE -> false;
            case INSENSITIVE -> true;
            case SMART -> q.patterns().stream().noneMatch(p -> p.chars().anyMatch(Character::isUpperCase));
        };
        int flags = insensitive ? Pattern.CASE_INSENSITIVE : 0;
        for (String p : q.patterns()) {
            try {
                patterns.add(Pattern.compile(p, flags));
            } catch (PatternSyntaxException e) {
                throw new InspectException(Kind.INVALID_ARGUMENT, null, "invalid pattern (RE2 syntax; no backreferences"
                        + " or look-around): " + e.getDescription() + (e.getPattern().isEmpty() ? "" : " at '"
                        + MergedView.display(e.getPattern()) + "'"));
            } catch (RuntimeException e) { // re2j reports a few oddities (e.g. nesting depth) otherwise
                throw new InspectException(Kind.INVALID_ARGUMENT, null, "invalid pattern: " + e.getMessage());
            }
        }
        for (String g : q.globs()) {
            boolean neg = g.startsWith("!");
            String glob = neg ? g.substring(1) : g;
            if (glob.isEmpty() || glob.indexOf('\0') >= 0) throw new InspectException(Kind.INVALID_ARGUMENT, null, "invalid glob");
            boolean slash = glob.contains("/");
            if (slash && glob.startsWith("/")) glob = glob.substring(1);
            PathMatcher m;
            try {
                m = FileSystems.getDefault().getPathMatcher("glob:" + glob);
            } catch (IllegalArgumentException e) {
                throw new InspectException(Kind.INVALID_ARGUMENT, null, "invalid glob: " + g);
            }
            (neg ? excludes : includes).add(m);
            (neg ? excludeHasSlash : includeHasSlash).add(slash);
        }
    }

    GrepResult run() throws IOException {
        try {
            for (String p : q.paths()) {
                MergedView.Node n = view.resolve(p, true); // explicit paths are followed, like rg
                if (n.isDir()) walk(n);
                else if (n.st().isRegular()) searchFile(n);
            }
        } catch (Stop s) {
            truncated = true;
        } catch (InspectException e) {
            if (e.kind() != Kind.TOO_LARGE) throw e;
            truncated = true; // a budget limit (entries, directory size, time): grep answers what it found
        }
        return new GrepResult(q.patterns(), List.copyOf(matches), truncated);
    }

    private void checkDeadline() {
        if (budget.cancelled()) budget.check(); // throws CANCELLED: nobody reads the answer
        if (System.nanoTime() - deadlineNanos > 0 || budget.expired()) throw new Stop();
    }

    /** Every regular file below {@code dir} that the globs admit; symlinks are not followed, devices, fifos, sockets never opened. */
    private void walk(MergedView.Node dir) throws IOException {
        view.walk(dir, false, budget, c -> {
            checkDeadline();
            if (excluded(c)) return false;
            if (!c.isDir() && c.st().isRegular() && included(c)) searchFile(c);
            return true;
        });
    }

    private boolean excluded(MergedView.Node n) {
        for (int i = 0; i < excludes.size(); i++) if (globMatches(excludes.get(i), excludeHasSlash.get(i), n)) return true;
        return false;
    }

    private boolean included(MergedView.Node n) {
        if (includes.isEmpty()) return true;
        for (int i = 0; i < includes.size(); i++) if (globMatches(includes.get(i), includeHasSlash.get(i), n)) return true;
        return false;
    }

    private static boolean globMatches(PathMatcher m, boolean onPath, MergedView.Node n) {
        try {
            return m.matches(Path.of(onPath ? n.path().substring(1) : n.name()));
        } catch (java.nio.file.InvalidPathException e) {
            return false;
        }
    }

    private void searchFile(MergedView.Node n) throws IOException {
        int inFile = 0;
        checkDeadline();
        try (MergedView.HostFile f = view.openFile(n);
             InputStream in = new Counting(java.nio.channels.Channels.newInputStream(f.channel()))) {
            byte[] head = in.readNBytes(BINARY_SNIFF);
            for (byte b : head) if (b == 0) return;
            LineReader lines = new LineReader(head, in);
            byte[] line;
            long lineNo = 0;
            while ((line = lines.next()) != null) {
                lineNo++;
                if ((lineNo & 1023) == 0) checkDeadline();
                int len = lines.lastLength();
                for (int i = 0; i < len; i++) if (line[i] == 0) return; // binary after all: stop, like rg
                List<GrepResult.Submatch> subs = match(line, len);
                if (subs.isEmpty()) continue;
                if (matches.size() >= q.maxTotal()) throw new Stop();
                // submatches count too (~32 JSON bytes each): a one-character pattern over long lines
                // would otherwise answer millions of them for a few MB of line text
                long cost = len + SUBMATCH_COST * (long) subs.size();
                if (responseText + cost > MAX_RESPONSE_TEXT) throw new Stop();
                responseText += cost;
                matches.add(new GrepResult.Match(n.path(), lineNo, decodeLenient(line, len), subs));
                if (q.maxCount() > 0 && ++inFile >= q.maxCount()) return;
            }
        }
    }

    private List<GrepResult.Submatch> match(byte[] line, int len) {
        if (len > 0 && line[len - 1] == '\n') len--; // like rg: the terminator is not part of the match text
        byte[] text = len == line.length ? line : Arrays.copyOf(line, len);
        List<int[]> spans = new ArrayList<>();
        for (Pattern p : patterns) {
            Matcher m = p.matcher(text); // UTF-8 input: start/end are byte offsets
            while (m.find()) spans.add(new int[] {m.start(), m.end()}); // find() steps past empty matches
        }
        if (spans.isEmpty()) return List.of();
        spans.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(b[1], a[1]));
        List<GrepResult.Submatch> out = new ArrayList<>();
        int lastEnd = -1;
        for (int[] sp : spans) {
            if (sp[0] < lastEnd || (sp[0] == lastEnd && sp[0] == sp[1])) continue; // overlaps an earlier span
            out.add(new GrepResult.Submatch(sp[0], sp[1]));
            lastEnd = sp[1];
        }
        return out;
    }

    private static String decodeLenient(byte[] b, int len) {
        return new String(b, 0, len, StandardCharsets.UTF_8);
    }

    /** Splits a stream into lines (each keeps its '\n'); overlong lines are cut at MAX_LINE. */
    private static final class LineReader {
        private final InputStream in;
        private byte[] buf = new byte[64 * 1024];
        private int pos, lim;
        private int lastLen;
        private boolean eof;

        LineReader(byte[] head, InputStream in) {
            this.in = in;
            if (head.length > buf.length) buf = new byte[head.length];
            System.arraycopy(head, 0, buf, 0, head.length);
            lim = head.length;
        }

        int lastLength() { return lastLen; }

        /** Returns a buffer whose first {@link #lastLength()} bytes are the line, or null at EOF. */
        byte[] next() throws IOException {
            ByteArrayOutputStream acc = null;
            int accLen = 0;
            while (true) {
                for (int i = pos; i < lim; i++) {
                    if (buf[i] == '\n') {
                        int n = i + 1 - pos;
                        byte[] out;
                        if (acc == null) {
                            out = java.util.Arrays.copyOfRange(buf, pos, i + 1);
                            lastLen = n;
                        } else {
                            if (accLen < MAX_LINE) acc.write(buf, pos, Math.min(n, MAX_LINE - accLen));
                            out = acc.toByteArray();
                            lastLen = out.length;
                        }
                        pos = i + 1;
                        return out;
                    }
                }
                if (pos < lim) {
                    if (acc == null) acc = new ByteArrayOutputStream();
                    int n = lim - pos;
                    if (accLen < MAX_LINE) acc.write(buf, pos, Math.min(n, MAX_LINE - accLen));
                    accLen += n;
                }
                pos = lim = 0;
                if (eof) break;
                int r = in.read(buf, 0, buf.length);
                if (r < 0) eof = true;
                else lim = r;
            }
            if (acc == null) return null;
            byte[] out = acc.toByteArray();
            lastLen = out.length;
            return out;
        }
    }

    /** Counts bytes read against the budget; past its byte limit the search stops (truncated). */
    private final class Counting extends java.io.FilterInputStream {
        Counting(InputStream in) { super(in); }

        @Override public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override public int read(byte[] b, int off, int len) throws IOException {
            int r = in.read(b, off, len);
            if (r > 0) {
                if (!budget.bytesFit(r)) throw new Stop();
                budget.countBytes(r);
            }
            return r;
        }
    }
}

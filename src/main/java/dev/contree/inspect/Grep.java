package dev.contree.inspect;

import dev.contree.inspect.InspectException.Kind;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/** One grep run over a {@link MergedView}; see {@link GrepQuery} and docs/inspect.md. */
final class Grep {
    static final int BINARY_SNIFF = 8192;
    /** Lines longer than this are matched on their first MAX_LINE bytes only. */
    static final int MAX_LINE = 1 << 20;

    private final MergedView view;
    private final GrepQuery q;
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

    Grep(MergedView view, GrepQuery q) {
        this.view = view;
        this.q = q;
        this.deadlineNanos = System.nanoTime() + q.timeout().toNanos();
        boolean insensitive = switch (q.caseMode()) {
            case SENSITIVE -> false;
            case INSENSITIVE -> true;
            case SMART -> q.patterns().stream().noneMatch(p -> p.chars().anyMatch(Character::isUpperCase));
        };
        int flags = insensitive ? Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CASE : 0;
        for (String p : q.patterns()) {
            try {
                patterns.add(Pattern.compile(p, flags));
            } catch (PatternSyntaxException e) {
                throw new InspectException(Kind.INVALID_ARGUMENT, null, "invalid pattern: " + e.getDescription());
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
        }
        return new GrepResult(q.patterns(), List.copyOf(matches), truncated);
    }

    private void checkDeadline() {
        if (System.nanoTime() - deadlineNanos > 0) throw new Stop();
    }

    private void walk(MergedView.Node dir) throws IOException {
        for (MergedView.Node c : view.readDir(dir).values()) {
            checkDeadline();
            if (excluded(c)) continue;
            if (c.isDir()) walk(c);
            else if (c.st().isRegular() && included(c)) searchFile(c);
            // symlinks are not followed; devices, fifos, sockets are never opened
        }
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
        try (InputStream in = Files.newInputStream(n.host(), LinkOption.NOFOLLOW_LINKS)) {
            byte[] head = in.readNBytes(BINARY_SNIFF);
            for (byte b : head) if (b == 0) return;
            LineReader lines = new LineReader(head, in);
            byte[] line;
            long lineNo = 0;
            while ((line = lines.next()) != null) {
                lineNo++;
                if ((lineNo & 1023) == 0) checkDeadline();
                List<GrepResult.Submatch> subs = match(line, lines.lastLength());
                if (subs.isEmpty()) continue;
                if (matches.size() >= q.maxTotal()) throw new Stop();
                matches.add(new GrepResult.Match(n.path(), lineNo, decodeLenient(line, lines.lastLength()), subs));
                if (q.maxCount() > 0 && ++inFile >= q.maxCount()) return;
            }
        }
    }

    private List<GrepResult.Submatch> match(byte[] line, int len) {
        if (len > 0 && line[len - 1] == '\n') len--; // like rg: the terminator is not part of the match text
        String s = decodeStrict(line, len);
        boolean utf8 = s != null;
        if (!utf8) s = new String(line, 0, len, StandardCharsets.ISO_8859_1); // offsets stay byte offsets
        CharSequence text = new DeadlineChars(s, deadlineNanos);
        List<int[]> spans = new ArrayList<>();
        for (Pattern p : patterns) {
            Matcher m = p.matcher(text);
            while (m.find()) spans.add(new int[] {m.start(), m.end()}); // find() steps past empty matches
        }
        if (spans.isEmpty()) return List.of();
        spans.sort((a, b) -> a[0] != b[0] ? Integer.compare(a[0], b[0]) : Integer.compare(b[1], a[1]));
        List<GrepResult.Submatch> out = new ArrayList<>();
        int lastEnd = -1;
        for (int[] sp : spans) {
            if (sp[0] < lastEnd || (sp[0] == lastEnd && sp[0] == sp[1])) continue; // overlaps an earlier span
            out.add(utf8 ? new GrepResult.Submatch(byteOffset(s, sp[0]), byteOffset(s, sp[1]))
                         : new GrepResult.Submatch(sp[0], sp[1]));
            lastEnd = sp[1];
        }
        return out;
    }

    private static int byteOffset(String s, int charIndex) {
        int bytes = 0;
        for (int i = 0; i < charIndex; i++) {
            char c = s.charAt(i);
            if (c < 0x80) bytes += 1;
            else if (c < 0x800) bytes += 2;
            else if (Character.isHighSurrogate(c)) { bytes += 4; i++; }
            else bytes += 3;
        }
        return bytes;
    }

    private static String decodeStrict(byte[] b, int len) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b, 0, len)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
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

    /** Lets a runaway regex notice the deadline (Java regex cannot otherwise be interrupted). */
    private static final class DeadlineChars implements CharSequence {
        private final String s;
        private final long deadline;
        private int calls;

        DeadlineChars(String s, long deadline) {
            this.s = s;
            this.deadline = deadline;
        }

        @Override public int length() { return s.length(); }
        @Override public char charAt(int i) {
            if ((++calls & 0xffff) == 0 && System.nanoTime() - deadline > 0) throw new Stop();
            return s.charAt(i);
        }
        @Override public CharSequence subSequence(int a, int b) { return s.subSequence(a, b); }
        @Override public String toString() { return s; }
    }
}

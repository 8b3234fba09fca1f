package dev.contree.inspect;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/** The {@code ls -l}-like text of {@code GET /v1/inspect/{uuid}/list?text} (clients print it verbatim). */
final class TextListing {
    private static final DateTimeFormatter DATE =
            DateTimeFormatter.ofPattern("MMM ppd HH:mm", Locale.ROOT).withZone(ZoneOffset.UTC);

    private TextListing() {}

    static String render(List<MergedView.Entry> entries) {
        long total = 0;
        for (MergedView.Entry e : entries) total += e.size();
        StringBuilder sb = new StringBuilder("total ").append(human(total)).append('\n');
        for (MergedView.Entry e : entries) {
            sb.append(modeString(e.mode())).append(' ').append(e.nlink()).append(' ')
              .append(e.owner()).append(' ').append(e.group()).append(' ')
              .append(String.format(Locale.ROOT, "%10s", e.type() == MergedView.Type.CHAR || e.type() == MergedView.Type.BLOCK
                      ? e.rdevMajor() + ", " + e.rdevMinor() : human(e.size())))
              .append(' ').append(DATE.format(Instant.ofEpochSecond(e.mtime()))).append(' ')
              .append(printable(Names.display(e.name())));
            if (e.isSymlink()) sb.append(" -> ").append(printable(Names.display(e.symlinkTarget())));
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        return b.toString();
    }

    static String human(long n) {
        if (n < 1024) return Long.toString(n);
        String[] units = {"KB", "MB", "GB", "TB", "PB", "EB"};
        double v = n;
        int u = -1;
        do {
            v /= 1024;
            u++;
        } while (v >= 1024 && u < units.length - 1);
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }

    static String modeString(int mode) {
        char t = switch (MergedView.typeOf(mode)) {
            case DIR -> 'd';
            case SYMLINK -> 'l';
            case CHAR -> 'c';
            case BLOCK -> 'b';
            case FIFO -> 'p';
            case SOCKET -> 's';
            case FILE -> '-';
        };
        char[] c = new char[10];
        c[0] = t;
        String rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) c[i + 1] = (mode & (1 << (8 - i))) != 0 ? rwx.charAt(i) : '-';
        if ((mode & 04000) != 0) c[3] = c[3] == 'x' ? 's' : 'S';
        if ((mode & 02000) != 0) c[6] = c[6] == 'x' ? 's' : 'S';
        if ((mode & 01000) != 0) c[9] = c[9] == 'x' ? 't' : 'T';
        return new String(c);
    }
}

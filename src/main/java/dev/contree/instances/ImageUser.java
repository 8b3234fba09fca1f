package dev.contree.instances;

import dev.contree.inspect.MergedView;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Resolves an image's OCI {@code User} ({@code 1000}, {@code 1000:1000}, {@code app}, {@code app:staff})
 * to numeric ids through the image's own {@code /etc/passwd} and {@code /etc/group}.
 */
final class ImageUser {
    record Ids(int uid, int gid) {}

    private ImageUser() {}

    /** The ids for {@code user}, or empty when it is blank or names nobody the image knows. */
    static Optional<Ids> resolve(String user, MergedView image) {
        if (user == null || user.isBlank()) return Optional.empty();
        String[] parts = user.trim().split(":", 2);
        String[] passwd = lookup(image, "/etc/passwd", parts[0]);
        Integer uid = number(parts[0]);
        if (uid == null && passwd != null) uid = number(passwd[2]);
        if (uid == null) return Optional.empty();
        Integer gid;
        if (parts.length == 2) {
            gid = number(parts[1]);
            if (gid == null) {
                String[] group = lookup(image, "/etc/group", parts[1]);
                gid = group == null ? null : number(group[2]);
            }
        } else {
            gid = passwd != null ? number(passwd[3]) : uid;
        }
        return gid == null ? Optional.empty() : Optional.of(new Ids(uid, gid));
    }

    /** The colon-separated fields of the line whose name (or id) is {@code key}, or null. */
    private static String[] lookup(MergedView image, String file, String key) {
        try (InputStream in = image.open(file)) {
            String text = new String(in.readNBytes(1 << 20), StandardCharsets.UTF_8);
            for (String line : text.split("\n")) {
                String[] f = line.split(":");
                if (f.length >= 4 && (f[0].equals(key) || f[2].equals(key))) return f;
            }
        } catch (IOException | RuntimeException e) {
            // no such file in the image: numeric ids only
        }
        return null;
    }

    private static Integer number(String s) {
        try {
            int n = Integer.parseInt(s.trim());
            return n >= 0 ? n : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }
}

package dev.contree.objects;

import java.util.regex.Pattern;

/**
 * Where an object lives: a space ({@code layers}, {@code files}) and the sha256 of its bytes. Keys are content
 * addresses, so an object is written once and never changes: two nodes putting the same bytes put the same object,
 * and a reader checks what it got against the key.
 */
public record ObjectKey(String space, String sha256) {
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern SPACE = Pattern.compile("[a-z]{1,16}");
    private static final Pattern PATH = Pattern.compile("([a-z]{1,16})/sha256/([0-9a-f]{2})/([0-9a-f]{64})");

    public static final String LAYERS = "layers";
    public static final String FILES = "files";

    public ObjectKey {
        if (space == null || !SPACE.matcher(space).matches()) throw new IllegalArgumentException("bad object space: " + space);
        if (sha256 == null || !SHA256.matcher(sha256).matches()) throw new IllegalArgumentException("not a sha256: " + sha256);
    }

    public static ObjectKey layer(String sha256) {
        return new ObjectKey(LAYERS, sha256);
    }

    public static ObjectKey file(String sha256) {
        return new ObjectKey(FILES, sha256);
    }

    /** The key whose {@link #path} is {@code path}; empty for any other name (not an object of ours). */
    public static java.util.Optional<ObjectKey> fromPath(String path) {
        var m = PATH.matcher(path);
        if (!m.matches() || !m.group(3).startsWith(m.group(2))) return java.util.Optional.empty();
        return java.util.Optional.of(new ObjectKey(m.group(1), m.group(3)));
    }

    /** The key as the metadata store's garbage collection names it: {@code layers/abcdef…}. */
    public String markKey() {
        return space + "/" + sha256;
    }

    /** The key {@link #markKey} names. */
    public static ObjectKey fromMarkKey(String markKey) {
        int slash = markKey.indexOf('/');
        if (slash < 0) throw new IllegalArgumentException("not an object key: " + markKey);
        return new ObjectKey(markKey.substring(0, slash), markKey.substring(slash + 1));
    }

    /** The object's name below the store's prefix: {@code layers/sha256/ab/abcdef…}. */
    public String path() {
        return space + "/sha256/" + sha256.substring(0, 2) + "/" + sha256;
    }

    @Override
    public String toString() {
        return space + "/sha256:" + sha256;
    }
}

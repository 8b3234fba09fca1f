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

    /** The object's name below the store's prefix: {@code layers/sha256/ab/abcdef…}. */
    public String path() {
        return space + "/sha256/" + sha256.substring(0, 2) + "/" + sha256;
    }

    @Override
    public String toString() {
        return space + "/sha256:" + sha256;
    }
}

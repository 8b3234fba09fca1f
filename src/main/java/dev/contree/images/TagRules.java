package dev.contree.images;

import java.util.regex.Pattern;

/** What a tag may look like: {@code ubuntu:latest}, {@code my/base:1.0}, {@code common/python-ml/python:3.11-slim}. */
public final class TagRules {
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9._/:@+-]{0,253}[A-Za-z0-9])?");

    private TagRules() {}

    /** Null if valid, else the reason it is not. */
    public static String problem(String tag) {
        if (tag == null || tag.isEmpty()) return "tag must be a non-empty string";
        if (tag.length() > 255) return "tag must be at most 255 characters";
        if (!TAG.matcher(tag).matches()) {
            return "invalid tag '" + tag + "': use letters, digits and . _ / : @ + -, starting and ending with a letter or digit";
        }
        return null;
    }
}

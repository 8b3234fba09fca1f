package dev.contree.registry;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A parsed image reference. {@code registry} is the canonical host[:port] ({@code docker.io} for Docker Hub; the API
 * is reached at {@link #apiHost()}), {@code repository} the full path ({@code library/alpine}), {@code tag} is
 * {@code latest} when neither tag nor digest was given and may be null when only a digest was given, {@code digest}
 * is {@code sha256:<64 hex>} or null. When a digest is present it wins over the tag.
 */
public record ImageReference(String registry, String repository, String tag, String digest) {
    public static final String DOCKER_HUB = "docker.io";
    public static final String DOCKER_HUB_API = "registry-1.docker.io";

    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final Pattern HOST = Pattern.compile(
        "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:.]+])(?::[0-9]{1,5})?");

    public ImageReference {
        if (registry == null || registry.isEmpty()) throw new IllegalArgumentException("registry is required");
        if (repository == null || repository.isEmpty()) throw new IllegalArgumentException("repository is required");
        if (tag == null && digest == null) tag = "latest";
    }

    /**
     * Parses {@code docker://docker.io/library/alpine:latest}, {@code oci://...}, {@code docker://python:3.11-slim},
     * {@code alpine}, {@code library/alpine}, {@code ghcr.io/o/i:tag}, {@code host:5000/x/y@sha256:...},
     * {@code localhost:5000/busybox}, {@code name:tag@sha256:...}.
     *
     * @throws IllegalArgumentException with a user-presentable message
     */
    public static ImageReference parse(String ref) {
        if (ref == null || ref.isBlank()) throw new IllegalArgumentException("image reference is empty");
        String original = ref;
        String s = ref.strip();
        String lower = s.toLowerCase(Locale.ROOT);
        if (lower.startsWith("docker://")) s = s.substring("docker://".length());
        else if (lower.startsWith("oci://")) s = s.substring("oci://".length());
        else if (lower.matches("^[a-z][a-z0-9+.-]*://.*")) {
            throw bad(original, "unsupported scheme '" + s.substring(0, s.indexOf("://")) + "://' (use docker://, oci:// or a bare reference)");
        }
        if (s.isEmpty()) throw bad(original, "missing image name");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= ' ' || c >= 0x7f) throw bad(original, "contains whitespace or non-ASCII characters");
        }
        if (s.length() > 512) throw bad(original, "too long");

        String digest = null;
        int at = s.indexOf('@');
        if (at >= 0) {
            digest = s.substring(at + 1);
            s = s.substring(0, at);
            if (!DIGEST.matcher(digest).matches()) {
                throw bad(original, digest.startsWith("sha256:")
                    ? "digest must be sha256: followed by 64 lowercase hex characters"
                    : "only sha256 digests are supported (got '" + digest + "')");
            }
        }

        String registry = DOCKER_HUB;
        String rest = s;
        int slash = s.indexOf('/');
        if (slash >= 0) {
            String first = s.substring(0, slash);
            if (first.contains(".") || first.contains(":") || first.equals("localhost") || first.startsWith("[")) {
                registry = first;
                rest = s.substring(slash + 1);
                if (!HOST.matcher(registry).matches()) throw bad(original, "invalid registry host '" + registry + "'");
                int colon = registry.lastIndexOf(':');
                if (colon > registry.lastIndexOf(']')) {
                    int port = Integer.parseInt(registry.substring(colon + 1));
                    if (port < 1 || port > 65535) throw bad(original, "invalid registry port " + port);
                }
                registry = registry.toLowerCase(Locale.ROOT);
                if (registry.equals("index.docker.io") || registry.equals(DOCKER_HUB_API)) registry = DOCKER_HUB;
            }
        }

        String tag = null;
        int colon = rest.lastIndexOf(':');
        if (colon >= 0 && colon > rest.lastIndexOf('/')) {
            tag = rest.substring(colon + 1);
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                throw bad(original, "invalid tag '" + tag + "' (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
            }
        }
        if (rest.isEmpty()) throw bad(original, "missing repository name");
        if (rest.startsWith("/") || rest.endsWith("/") || rest.contains("//")) throw bad(original, "empty path component in repository name");
        for (String comp : rest.split("/")) {
            if (!COMPONENT.matcher(comp).matches()) {
                if (!comp.equals(comp.toLowerCase(Locale.ROOT))) throw bad(original, "repository name must be lowercase");
                throw bad(original, "invalid repository path component '" + comp + "'");
            }
        }
        if (registry.equals(DOCKER_HUB) && !rest.contains("/")) rest = "library/" + rest;
        if (rest.length() > 255) throw bad(original, "repository name longer than 255 characters");
        if (tag == null && digest == null) tag = "latest";
        return new ImageReference(registry, rest, tag, digest);
    }

    private static IllegalArgumentException bad(String ref, String why) {
        return new IllegalArgumentException("invalid image reference '" + ref + "': " + why);
    }

    /** Host[:port] of the registry API ({@code registry-1.docker.io} for Docker Hub). */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? DOCKER_HUB_API : registry;
    }

    /** Host part of {@link #registry()} without port or IPv6 brackets. */
    public String host() {
        return hostOf(registry);
    }

    static String hostOf(String hostPort) {
        if (hostPort.startsWith("[")) return hostPort.substring(1, hostPort.indexOf(']'));
        int c = hostPort.lastIndexOf(':');
        return c >= 0 ? hostPort.substring(0, c) : hostPort;
    }

    /** Whether the registry is on loopback (localhost, 127.0.0.0/8, ::1) — plain HTTP is always allowed there. */
    public boolean isLoopback() {
        return isLoopbackHost(host());
    }

    static boolean isLoopbackHost(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        if (h.startsWith("[") && h.endsWith("]")) h = h.substring(1, h.length() - 1);
        return h.equals("localhost") || h.equals("::1") || h.equals("0:0:0:0:0:0:0:1") || h.matches("127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}");
    }

    /** The manifest reference to request: the digest if present, else the tag. */
    public String reference() {
        return digest != null ? digest : tag;
    }

    /** Canonical form {@code registry/repository[:tag][@digest]}, e.g. {@code docker.io/library/alpine:latest}. */
    @Override
    public String toString() {
        return registry + "/" + repository + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }
}

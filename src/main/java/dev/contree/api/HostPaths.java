package dev.contree.api;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Last line against host paths in error texts: clients see paths inside images only. Messages are meant to be
 * built without host paths at their source; whatever still names the data dir (an exception text from a layer,
 * the runtime's stderr) has that prefix replaced, and layer scratch names ({@code .pending-…}) are dropped.
 */
final class HostPaths {
    private static volatile List<String> prefixes = List.of();
    private static final Pattern SCRATCH = Pattern.compile("\\.(pending|work|trash|tmp)-[A-Za-z0-9._-]+");
    private static final Pattern LAYER_PATH = Pattern.compile("(/[^\\s:'\"]*)?/layers/[^\\s:'\"]*");

    private HostPaths() {}

    /** The data dir as given and as resolved (symlinks): both spellings can appear in messages. */
    static void dataDir(Path dataDir) {
        Path abs = dataDir.toAbsolutePath().normalize();
        String real = abs.toString();
        try {
            real = abs.toRealPath().toString();
        } catch (Exception ignored) {
            // not there yet: the given spelling suffices
        }
        prefixes = real.equals(abs.toString()) ? List.of(abs.toString()) : List.of(abs.toString(), real);
    }

    static String scrub(String message) {
        if (message == null) return null;
        String m = message;
        for (String p : prefixes) m = m.replace(p, "<data>");
        m = LAYER_PATH.matcher(m).replaceAll("<layer>");
        m = SCRATCH.matcher(m).replaceAll("<scratch>");
        return m;
    }
}

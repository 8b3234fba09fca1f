package dev.contree.sandbox;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.slf4j.Logger;

/** Removal of the server's own run and asset directories, shared by the runtimes and the guest assets. */
public final class RunFiles {
    private RunFiles() {}

    /**
     * Deletes {@code p} and everything below it, links as links (never followed); what cannot be deleted stays and
     * is logged to {@code log}, the caller's: a left-over directory must not fail the run.
     */
    public static void deleteTree(Path p, Logger log) {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(x -> {
                try { Files.delete(x); } catch (IOException ignored) { }
            });
        } catch (IOException | RuntimeException e) {
            log.warn("cannot delete {}: {}", p, e.toString());
        }
    }
}

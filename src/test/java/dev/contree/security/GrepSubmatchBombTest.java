package dev.contree.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.contree.inspect.GrepQuery;
import dev.contree.inspect.GrepResult;
import dev.contree.inspect.MergedView;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Red team: a one-character pattern over long lines. An 8 MB file of eight 1 MiB lines of 'A' answered
 * {@code grep?pattern=A} with 8.4 million submatches: a 259 MB JSON body, 4.6 GB of heap for one
 * request, and two concurrent requests of one tenant ended in {@code OutOfMemoryError} (500s, the whole
 * server's heap gone). The answer must stay bounded: submatches count against the response budget.
 */
class GrepSubmatchBombTest {
    @TempDir Path tmp;

    @Test
    void submatchesOfOneCharacterPatternsKeepTheAnswerBounded() throws Exception {
        Path layer = Files.createDirectories(tmp.resolve("layer"));
        byte[] line = new byte[(1 << 20) - 1];
        java.util.Arrays.fill(line, (byte) 'A');
        try (var out = Files.newOutputStream(layer.resolve("g"))) {
            for (int i = 0; i < 8; i++) { out.write(line); out.write('\n'); }
        }
        MergedView view = new MergedView(List.of(layer));
        GrepResult r = view.grep(GrepQuery.of("A"));
        long submatches = r.matches().stream().mapToLong(m -> m.submatches().size()).sum();
        long text = r.matches().stream().mapToLong(m -> m.lineText().getBytes(StandardCharsets.UTF_8).length).sum();
        // ~32 bytes of JSON per submatch ({"start":1048000,"end":1048001},)
        long approxJson = text + 32 * submatches;
        assertThat(approxJson).as("approximate JSON bytes of the grep answer").isLessThanOrEqualTo(16L << 20);
        assertThat(r.truncated()).isTrue();
    }
}

package dev.contree.server;

import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.operations.OperationKind;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class FsckTest {
    Path dir;

    @AfterEach
    void cleanup() throws Exception {
        TestDirs.removeWithMounts(dir);
    }

    static Fsck.Report fsck(Path data, boolean repair) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        return Fsck.run(data, repair, new PrintStream(out, true));
    }

    @Test
    void findsAndRepairsDrift() throws Exception {
        dir = Files.createTempDirectory("fsck");
        Path data = dir.resolve("data");
        String sha;
        try (TestServer s = new TestServer(data)) {
            s.importRootfs(s.tokenA, TestImages.busyboxRootfs(), "bb");
            sha = s.upload(s.tokenA, "will vanish".getBytes()).json().get("sha256").asText();
            // The data dir is locked while the server runs.
            assertThatThrownBy(() -> fsck(data, false)).hasMessageContaining("in use");
            s.server.services().operations().create(s.accountA, OperationKind.INSTANCE, null, dev.contree.api.Json.object());
            // An unreferenced layer (e.g. a commit whose image was never recorded).
            var builder = s.server.services().layers().create();
            Files.writeString(builder.diffDir().resolve("orphan"), "x");
            builder.commit();
        }
        Path blobs = data.resolve("blobs");
        Files.delete(blobs.resolve("sha256").resolve(sha.substring(0, 2)).resolve(sha));
        Path stray = blobs.resolve("sha256/ff/" + "f".repeat(64));
        Files.createDirectories(stray.getParent());
        Files.writeString(stray, "nobody's");
        Files.writeString(blobs.resolve("tmp/abc.part"), "half an upload");

        Fsck.Report found = fsck(data, false);
        assertThat(String.join("\n", found.problems()))
                .contains("is referenced by no image")
                .contains("has no blob " + sha)
                .contains("blob " + "f".repeat(64) + " is referenced by no file")
                .contains("partial upload abc.part")
                .contains("1 operation(s) still marked active");
        assertThat(found.repaired()).isEmpty();

        Fsck.Report repaired = fsck(data, true);
        assertThat(repaired.repaired()).hasSize(5);
        assertThat(fsck(data, false).clean()).isTrue();

        try (TestServer s = new TestServer(data)) {
            String image = s.get(s.tokenA, "/v1/images?tag=bb").json().get("images").get(0).get("uuid").asText();
            assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/etc/passwd").text()).contains("root:");
        }
    }
}

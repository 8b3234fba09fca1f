package dev.contree.fuzz;

import dev.contree.TestServer;
import dev.contree.server.ServerConfig;
import org.junit.jupiter.api.AutoClose;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

/**
 * What the fuzz tests aim at: a server with account A's busybox image (tagged), its import operation and one of A's
 * files, reached over the API and over {@link RawHttp}. Subclasses add their own objects, then take their snapshot.
 */
abstract class FuzzTestBase {
    /** The server's data dir, whose blobs the snapshots compare. */
    static Path dir;
    @AutoClose static TestServer s;
    static RawHttp raw;
    static String image, importOp, fileUuid, fileSha;
    static Answers.Snapshot before;

    static void serve(String name, UnaryOperator<ServerConfig> config, String tag, String fileContent) throws Exception {
        s = TestServer.inTempDir(name, config);
        dir = s.dataDir;
        raw = new RawHttp(s.server.port());
        image = s.importBusybox(tag);
        importOp = s.get(s.tokenA, "/v1/operations?kind=image_import").json().get(0).get("uuid").asText();
        var up = s.upload(s.tokenA, fileContent.getBytes(StandardCharsets.UTF_8)).json();
        fileUuid = up.get("uuid").asText();
        fileSha = up.get("sha256").asText();
    }
}

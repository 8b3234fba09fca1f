package dev.contree.imports;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.TestServer;
import dev.contree.registry.Compression;
import dev.contree.registry.Descriptor;
import dev.contree.registry.OciLayoutBuilder;
import dev.contree.registry.OciLayoutBuilder.Tar;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Content addressing deduplicates storage, never access. Alice imports a private image; Bob names her layer's digest
 * in a manifest of his own (from a registry that does not serve the blob, or serves other bytes, or in an uploaded
 * archive with other bytes under that name). Bob's import fails and Bob never sees Alice's files. Bob importing the
 * real bytes himself works and shares Alice's stored layer.
 */
class CrossAccountLayerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SECRET = "alice's private key material\n";
    /** Scratch for the layouts the registries serve; the server has its own temp dir. */
    @TempDir static Path dir;
    static TestServer s;
    static LayoutRegistry reg;
    static Path aliceLayout;
    static OciLayoutBuilder.Image alice;
    static Descriptor privateLayer;

    @BeforeAll
    static void start() throws IOException {
        s = TestServer.inTempDir("cross-account", c -> c.withRuntime("runc", "ptrace"));
        reg = new LayoutRegistry(dir.resolve("alice-layout"));
        aliceLayout = dir.resolve("alice-layout");
        alice = new OciLayoutBuilder()
                .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
                .layer(Compression.GZIP, new Tar().dir("home").file("home/secret.txt", SECRET))
                .writeLayout(aliceLayout, "t");
        privateLayer = alice.layers().get(1);
        JsonNode op = importAs(s.tokenA, "docker://" + reg.hostPort() + "/alice/private:t");
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        String image = op.get("result").get("image").asText();
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/home/secret.txt").text()).isEqualTo(SECRET);
    }

    @AfterAll
    static void stop() throws Exception {
        if (reg != null) reg.close();
        if (s != null) s.close();
    }

    static JsonNode importAs(String token, String url) {
        ObjectNode body = JSON.createObjectNode();
        body.putObject("registry").put("url", url);
        body.put("timeout", 60);
        return s.await(token, s.start(token, "/v1/images/import", body.toString()), Duration.ofSeconds(120));
    }

    private static final java.util.concurrent.atomic.AtomicInteger ACCOUNTS = new java.util.concurrent.atomic.AtomicInteger();

    /** A token of a fresh account (each attack starts with an account that never held Alice's bytes). */
    static String newAccount() {
        return s.server.services().tokens().issue("bob-" + ACCOUNTS.incrementAndGet(), "test", null).secret();
    }

    static Set<String> layerIds() throws IOException {
        return new HashSet<>(s.server.services().layers().layerIds());
    }

    /** No image of Bob's has Alice's file. */
    static void bobSeesNothingOfAlice(String bob) {
        JsonNode images = s.get(bob, "/v1/images").json().get("images");
        for (JsonNode img : images) {
            var r = s.get(bob, "/v1/inspect/" + img.get("uuid").asText() + "/download?path="
                    + URLEncoder.encode("/home/secret.txt", StandardCharsets.UTF_8));
            assertThat(r.status()).as("Bob reads Alice's file through image " + img).isNotEqualTo(200);
        }
    }

    /**
     * Bob's registry: Alice's manifest and config (digests are no secret), and for her layers' blobs nothing
     * ({@code blob == null}: 404) or {@code blob}.
     */
    static LayoutRegistry craftedRegistry(byte[] blob) throws IOException {
        LayoutRegistry r = new LayoutRegistry(aliceLayout);
        for (Descriptor d : alice.layers()) r.overrides.put(d.digest(), new byte[0]);
        if (blob != null) r.overrides.put(privateLayer.digest(), blob);
        return r;
    }

    @Test
    void manifestNamingAnotherAccountsLayerWithoutServingTheBlobFails() throws IOException {
        String bob = newAccount();
        Set<String> before = layerIds();
        try (LayoutRegistry evil = craftedRegistry(null)) {
            JsonNode op = importAs(bob, "docker://" + evil.hostPort() + "/bob/evil:t");
            assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
            assertThat(evil.blobRequests.get()).as("the import asked for the blob it lacks proof of").isPositive();
        }
        assertThat(layerIds()).isEqualTo(before);
        bobSeesNothingOfAlice(bob);
    }

    @Test
    void manifestNamingAnotherAccountsLayerWithOtherBytesFails() throws IOException {
        byte[] other = new byte[(int) privateLayer.size()];
        new Random(1).nextBytes(other);
        String bob = newAccount();
        try (LayoutRegistry evil = craftedRegistry(other)) {
            JsonNode op = importAs(bob, "docker://" + evil.hostPort() + "/bob/evil:t");
            assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        }
        bobSeesNothingOfAlice(bob);
    }

    /** The same attack through an uploaded OCI archive: Alice's manifest, other bytes under her private layer's name. */
    @Test
    void ociArchiveNamingAnotherAccountsLayerWithOtherBytesFails() throws IOException {
        Path layout = dir.resolve("bob-archive");
        copyTree(aliceLayout, layout);
        Path blob = layout.resolve("blobs/sha256/" + privateLayer.digest().substring(7));
        byte[] other = new byte[(int) Files.size(blob)];
        new Random(2).nextBytes(other);
        Files.write(blob, other);
        String bob = newAccount();
        String file = s.upload(bob, RegistryImportTest.tarDir(layout)).json().get("uuid").asText();
        JsonNode op = importAs(bob, "oci-archive+file://" + file);
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
        assertThat(op.get("error").asText()).contains("digest");
        bobSeesNothingOfAlice(bob);
    }

    /** Bob's own registry serving the same bytes: verified, then Alice's stored layers are reused, nothing is unpacked. */
    @Test
    void theSameRealBytesStillShareStorage() throws IOException {
        String bob = newAccount();
        Set<String> before = layerIds();
        try (LayoutRegistry bobs = new LayoutRegistry(aliceLayout)) {
            JsonNode op = importAs(bob, "docker://" + bobs.hostPort() + "/bob/copy:t");
            assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
            assertThat(bobs.blobRequests.get()).as("config + both layers downloaded and verified").isEqualTo(3);
            String image = op.get("result").get("image").asText();
            assertThat(s.get(bob, "/v1/inspect/" + image + "/download?path=/home/secret.txt").text()).isEqualTo(SECRET);
            assertThat(layerIds()).as("no new layer: storage is shared").isEqualTo(before);
            // Now proven: a re-import by Bob is the usual fast no-op that fetches only the config.
            JsonNode again = importAs(bob, "docker://" + bobs.hostPort() + "/bob/copy:t");
            assertThat(again.get("result").get("image").asText()).isEqualTo(image);
            assertThat(bobs.blobRequests.get()).isEqualTo(4);
        }
    }

    static void copyTree(Path from, Path to) throws IOException {
        try (var walk = Files.walk(from)) {
            for (Path p : walk.toList()) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(target);
                else Files.copy(p, target);
            }
        }
    }
}

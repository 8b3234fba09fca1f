package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

class FilesApiTest {
    @TempDir static Path dir;
    static TestServer s;
    static final HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        s = new TestServer(dir, c -> c.withLimits(1 << 20, 1 << 20, 2));
    }

    @AfterAll
    static void stop() {
        s.close();
    }

    static String sha256(byte[] b) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void chunkedUploadIsStoredAndDeduplicated() throws Exception {
        byte[] data = new byte[300_000];
        new Random(1).nextBytes(data);
        var first = s.uploadChunked(s.tokenA, data);
        assertThat(first.status()).isEqualTo(201);
        JsonNode f = first.json();
        assertThat(f.get("sha256").asText()).isEqualTo(sha256(data));
        assertThat(f.get("size").asLong()).isEqualTo(data.length);
        assertThat(f.get("created_at").asText()).matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}\\+00:00");
        assertThat(f.get("updated_at").isTextual()).isTrue();

        var again = s.upload(s.tokenA, data);
        assertThat(again.status()).isEqualTo(201);
        assertThat(again.json().get("uuid").asText()).isEqualTo(f.get("uuid").asText());

        // The blob on disk has exactly the uploaded bytes.
        String sha = f.get("sha256").asText();
        assertThat(Files.readAllBytes(dir.resolve("blobs/sha256/" + sha.substring(0, 2) + "/" + sha))).isEqualTo(data);
    }

    @Test
    void lookupByHashInEveryForm() throws Exception {
        byte[] data = "lookup me\n".getBytes(StandardCharsets.UTF_8);
        String uuid = s.upload(s.tokenA, data).json().get("uuid").asText();
        String sha = sha256(data);

        var byPath = s.get(s.tokenA, "/v1/files/" + sha);
        assertThat(byPath.status()).isEqualTo(200);
        assertThat(byPath.json().get("uuid").asText()).isEqualTo(uuid);
        assertThat(byPath.json().has("updated_at")).isTrue();
        assertThat(s.head(s.tokenA, "/v1/files/" + sha).status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, "/v1/files?sha256=" + sha).json().get("uuid").asText()).isEqualTo(uuid);
        assertThat(s.head(s.tokenA, "/v1/files?sha256=" + sha).status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, "/v1/files?uuid=" + uuid).json().get("sha256").asText()).isEqualTo(sha);
        assertThat(s.head(s.tokenA, "/v1/files?uuid=" + uuid).status()).isEqualTo(200);
        // Upper-case hex is the same hash.
        assertThat(s.get(s.tokenA, "/v1/files/" + sha.toUpperCase()).status()).isEqualTo(200);

        String missing = "0".repeat(64);
        var notFound = s.get(s.tokenA, "/v1/files/" + missing);
        assertThat(notFound.status()).isEqualTo(404);
        assertThat(notFound.json().get("error").asText()).isEqualTo("file not found");
        assertThat(notFound.json().get("status").asInt()).isEqualTo(404);
        assertThat(s.head(s.tokenA, "/v1/files/" + missing).status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, "/v1/files?sha256=" + missing).status()).isEqualTo(404);
        assertThat(s.head(s.tokenA, "/v1/files?uuid=00000000-0000-0000-0000-000000000000").status()).isEqualTo(404);
    }

    @Test
    void badIdentifiersAre400() {
        var bad = s.get(s.tokenA, "/v1/files/not-a-hash");
        assertThat(bad.status()).isEqualTo(400);
        assertThat(bad.json().get("error").asText()).contains("sha256");
        assertThat(s.get(s.tokenA, "/v1/files?uuid=nope").status()).isEqualTo(400);
        assertThat(s.get(s.tokenA, "/v1/files?sha256=xyz").status()).isEqualTo(400);
    }

    @Test
    void oversizedUploadIs413AndStoresNothing() throws Exception {
        byte[] big = new byte[(1 << 20) + 1];
        var chunked = s.uploadChunked(s.tokenA, big);
        assertThat(chunked.status()).isEqualTo(413);
        assertThat(chunked.json().get("error").asText()).contains("exceeds");
        assertThat(s.get(s.tokenA, "/v1/files/" + sha256(big)).status()).isEqualTo(404);
        try (var tmp = Files.list(dir.resolve("blobs/tmp"))) {
            assertThat(tmp.count()).isZero();
        }
    }

    @Test
    void oversizedJsonBodyIs413() throws Exception {
        String huge = "{\"tag\":\"" + "a".repeat((1 << 20) + 10) + "\"}";
        // With "Expect: 100-continue", as a client sending a large body should: the 413 comes before any of the body.
        // Without it, the server's close after the 413 (the body unread) may reset the connection before the client
        // reads the answer; RequestLimitsTest covers that the 413 comes at once.
        for (int i = 0; i < 30; i++) {
            HttpRequest req = HttpRequest.newBuilder(java.net.URI.create(s.url("/v1/images/00000000-0000-0000-0000-000000000000/tag")))
                    .expectContinue(true).header("Authorization", "Bearer " + s.tokenA).header("Content-Type", "application/json")
                    .method("PATCH", HttpRequest.BodyPublishers.ofString(huge)).timeout(java.time.Duration.ofSeconds(60)).build();
            var r = http.send(req, java.net.http.HttpResponse.BodyHandlers.ofString());
            assertThat(r.statusCode()).as("attempt %d", i).isEqualTo(413);
            assertThat(r.body()).contains("exceeds");
        }
    }

    @Test
    void filesAreInvisibleToAnotherAccount() throws Exception {
        byte[] data = "alice's secret\n".getBytes(StandardCharsets.UTF_8);
        String uuid = s.upload(s.tokenA, data).json().get("uuid").asText();
        String sha = sha256(data);
        assertThat(s.get(s.tokenB, "/v1/files/" + sha).status()).isEqualTo(404);
        assertThat(s.head(s.tokenB, "/v1/files/" + sha).status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, "/v1/files?uuid=" + uuid).status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, "/v1/files?limit=1000").json().get("files").toString()).doesNotContain(uuid);
        // Bob uploading the same bytes gets his own record.
        String bobs = s.upload(s.tokenB, data).json().get("uuid").asText();
        assertThat(bobs).isNotEqualTo(uuid);
    }

    @Test
    void listingPagesAreStableAndFilterByTime() throws Exception {
        var fresh = new TestServer(dir.resolve("paging"));
        try {
            List<String> uploaded = new ArrayList<>();
            for (int i = 0; i < 25; i++) uploaded.add(fresh.upload(fresh.tokenA, ("file " + i).getBytes()).json().get("uuid").asText());
            List<String> paged = new ArrayList<>();
            for (int offset = 0; ; offset += 7) {
                JsonNode page = fresh.get(fresh.tokenA, "/v1/files?limit=7&offset=" + offset).json().get("files");
                page.forEach(f -> paged.add(f.get("uuid").asText()));
                if (page.size() < 7) break;
            }
            assertThat(paged).hasSize(25).doesNotHaveDuplicates().containsExactlyInAnyOrderElementsOf(uploaded);
            // Newest first.
            assertThat(paged.getFirst()).isEqualTo(uploaded.getLast());
            assertThat(fresh.get(fresh.tokenA, "/v1/files?limit=100").json().get("files").size()).isEqualTo(25);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?since=1h").json().get("files").size()).isEqualTo(25);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?until=1h").json().get("files").size()).isZero();
            assertThat(fresh.get(fresh.tokenA, "/v1/files?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00").json().get("files").size()).isEqualTo(25);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?since=3600").json().get("files").size()).isEqualTo(25);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?since=yesterday").status()).isEqualTo(400);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?limit=0").json().get("error").asText()).isEqualTo("limit must be between 1 and 1000");
            assertThat(fresh.get(fresh.tokenA, "/v1/files?limit=1001").status()).isEqualTo(400);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?offset=-1").status()).isEqualTo(400);
            assertThat(fresh.get(fresh.tokenA, "/v1/files?limit=abc").status()).isEqualTo(400);
        } finally {
            fresh.close();
        }
    }
}

package dev.contree.api;

import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.net.http.HttpRequest;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.assertj.core.api.Assertions.assertThat;

class AuthAndTransportTest {
    @TempDir static Path dir;
    static TestServer s;

    static final List<String[]> ROUTES = List.of(
            new String[]{"GET", "/v1/whoami"}, new String[]{"GET", "/v1/images"}, new String[]{"GET", "/v1/files"},
            new String[]{"POST", "/v1/files"}, new String[]{"GET", "/v1/files/" + "a".repeat(64)},
            new String[]{"HEAD", "/v1/files/" + "a".repeat(64)}, new String[]{"GET", "/v1/operations"},
            new String[]{"GET", "/v1/operations/00000000-0000-0000-0000-000000000000"},
            new String[]{"DELETE", "/v1/operations/00000000-0000-0000-0000-000000000000"},
            new String[]{"PATCH", "/v1/images/00000000-0000-0000-0000-000000000000/tag"},
            new String[]{"DELETE", "/v1/images/00000000-0000-0000-0000-000000000000/tag"},
            new String[]{"GET", "/v1/inspect/?tag=x"}, new String[]{"GET", "/v1/inspect/00000000-0000-0000-0000-000000000000/"},
            new String[]{"GET", "/v1/no-such-route"});

    @BeforeAll
    static void start() throws Exception {
        s = new TestServer(dir);
    }

    @AfterAll
    static void stop() {
        s.close();
    }

    @Test
    void everyRouteNeedsAValidToken() {
        var revoked = s.server.services().tokens().issue("carol", "soon revoked", null);
        s.server.services().tokens().revoke(revoked.token().uuid());
        var expired = s.server.services().tokens().issue("dave", "expired", java.time.Instant.now().minusSeconds(5));
        for (String[] route : ROUTES) {
            for (String[] auth : List.of(new String[]{}, new String[]{"Authorization", "Bearer"}, new String[]{"Authorization", "Basic abc"},
                    new String[]{"Authorization", "Bearer wrong"}, new String[]{"Authorization", "Bearer " + revoked.secret()},
                    new String[]{"Authorization", "Bearer " + expired.secret()})) {
                var r = s.send(null, route[0], route[1], HttpRequest.BodyPublishers.ofString("{}"), auth);
                assertThat(r.status()).as(route[0] + " " + route[1] + " " + String.join(" ", auth)).isEqualTo(401);
                if (!route[0].equals("HEAD")) assertThat(r.json().get("status").asInt()).isEqualTo(401);
            }
        }
    }

    @Test
    void whoamiAndProjectHeader() {
        var r = s.send(s.tokenA, "GET", "/v1/whoami", null, "Project", "my-project", "Content-Type", "application/json");
        assertThat(r.status()).isEqualTo(200);
        var body = r.json();
        assertThat(body.get("token_uuid").asText()).matches("[0-9a-f-]{36}");
        assertThat(body.has("token_expiration")).isTrue();
        assertThat(body.get("permissions").get("list").asBoolean()).isTrue();
        assertThat(body.get("limits").get("instance_max_timeout").asInt()).isPositive();
        assertThat(body.get("limits").get("instance_max_concurrency").asInt()).isPositive();
        assertThat(body.get("operations_stat").isObject()).isTrue();
    }

    @Test
    void unknownRoutesAndMethodsAreJson404() {
        var r = s.get(s.tokenA, "/v1/nothing-here");
        assertThat(r.status()).isEqualTo(404);
        assertThat(r.json().get("status").asInt()).isEqualTo(404);
        assertThat(s.delete(s.tokenA, "/v1/whoami").json().get("error").asText()).isNotBlank();
    }

    @Test
    void bigJsonIsNeverDeclaredAbove64KiB() {
        for (int i = 0; i < 400; i++) s.upload(s.tokenA, ("big listing " + i).getBytes());
        var r = s.get(s.tokenA, "/v1/files?limit=1000");
        assertThat(r.body().length).isGreaterThan(64 * 1024);
        String length = r.header("Content-Length");
        assertThat(length == null || Long.parseLong(length) <= 64 * 1024).as("Content-Length " + length).isTrue();
        assertThat(r.json().get("files").size()).isGreaterThanOrEqualTo(400);
    }

    @Test
    void gzipOnlyWhenAsked() throws Exception {
        for (int i = 0; i < 40; i++) s.upload(s.tokenA, ("gzip test " + i).getBytes());
        var plain = s.get(s.tokenA, "/v1/files?limit=1000");
        assertThat(plain.header("Content-Encoding")).isNull();
        assertThat(plain.json().get("files").size()).isGreaterThanOrEqualTo(40);

        var zipped = s.send(s.tokenA, "GET", "/v1/files?limit=1000", null, "Accept-Encoding", "gzip");
        assertThat(zipped.header("Content-Encoding")).isEqualTo("gzip");
        byte[] unzipped = new GZIPInputStream(new ByteArrayInputStream(zipped.body())).readAllBytes();
        assertThat(unzipped).isEqualTo(plain.body());
    }
}

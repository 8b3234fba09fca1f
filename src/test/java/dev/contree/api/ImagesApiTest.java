package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class ImagesApiTest {
    @TempDir Path dir;
    TestServer s;

    @BeforeEach
    void start() throws Exception {
        s = new TestServer(dir);
    }

    @AfterEach
    void stop() {
        s.close();
    }

    Image image(String account, String tag) {
        return s.server.services().images().create(new ImageService.NewImage(account, null, null, List.of(), ImageConfig.EMPTY, 0, tag));
    }

    @Test
    void listShapeAndFilters() {
        Image plain = image(s.accountA, null);
        Image ubuntu = image(s.accountA, "ubuntu");
        Image ubuntuLatest = image(s.accountA, "ubuntu:latest");
        image(s.accountA, "alpine:3");

        var all = s.get(s.tokenA, "/v1/images").json();
        assertThat(all.get("images").size()).isEqualTo(4);
        JsonNode first = all.get("images").get(0);
        assertThat(first.fieldNames()).toIterable().contains("uuid", "tag", "created_at", "operation_uuid");
        assertThat(first.get("created_at").asText()).endsWith("+00:00");

        assertThat(uuids(s.get(s.tokenA, "/v1/images?tagged=1").json())).hasSize(3).doesNotContain(plain.uuid());
        assertThat(uuids(s.get(s.tokenA, "/v1/images?tagged=0").json())).containsExactly(plain.uuid());
        // Prefix filter with the exact match first, even though ubuntu:latest is newer.
        assertThat(uuids(s.get(s.tokenA, "/v1/images?tag=ubuntu").json())).containsExactly(ubuntu.uuid(), ubuntuLatest.uuid());
        assertThat(uuids(s.get(s.tokenA, "/v1/images?tag=ubuntu:").json())).containsExactly(ubuntuLatest.uuid());
        assertThat(uuids(s.get(s.tokenA, "/v1/images?tag=%25").json())).isEmpty();
        assertThat(uuids(s.get(s.tokenA, "/v1/images?uuid=" + plain.uuid()).json())).containsExactly(plain.uuid());
        assertThat(uuids(s.get(s.tokenA, "/v1/images?since=1d").json())).hasSize(4);
        assertThat(uuids(s.get(s.tokenA, "/v1/images?until=2001-01-01T00:00:00Z").json())).isEmpty();
        assertThat(s.get(s.tokenA, "/v1/images?tagged=maybe").status()).isEqualTo(400);
        assertThat(s.get(s.tokenA, "/v1/images?uuid=xyz").status()).isEqualTo(400);
    }

    @Test
    void paginationIsStable() {
        List<String> created = new ArrayList<>();
        for (int i = 0; i < 23; i++) created.add(image(s.accountA, null).uuid());
        List<String> seen = new ArrayList<>();
        for (int offset = 0; offset < 30; offset += 5) seen.addAll(uuids(s.get(s.tokenA, "/v1/images?limit=5&offset=" + offset).json()));
        assertThat(seen).doesNotHaveDuplicates().containsExactlyInAnyOrderElementsOf(created);
        assertThat(seen).isEqualTo(uuids(s.get(s.tokenA, "/v1/images?limit=1000").json()));
    }

    @Test
    void tagMovesBetweenImages() {
        Image a = image(s.accountA, null);
        Image b = image(s.accountA, null);
        var tagged = s.json(s.tokenA, "PATCH", "/v1/images/" + a.uuid() + "/tag", "{\"tag\":\"my/base:latest\"}");
        assertThat(tagged.status()).isEqualTo(200);
        assertThat(tagged.json().get("tag").asText()).isEqualTo("my/base:latest");

        var moved = s.json(s.tokenA, "PATCH", "/v1/images/" + b.uuid() + "/tag", "{\"tag\":\"my/base:latest\"}");
        assertThat(moved.json().get("uuid").asText()).isEqualTo(b.uuid());
        assertThat(s.get(s.tokenA, "/v1/inspect/" + a.uuid() + "/").json().get("tag").isNull()).isTrue();
        assertThat(s.get(s.tokenA, "/v1/inspect/" + b.uuid() + "/").json().get("tag").asText()).isEqualTo("my/base:latest");

        // Retagging replaces the image's previous tag (one tag per image in this representation).
        s.json(s.tokenA, "PATCH", "/v1/images/" + b.uuid() + "/tag", "{\"tag\":\"other\"}");
        assertThat(uuids(s.get(s.tokenA, "/v1/images?tagged=1").json())).containsExactly(b.uuid());
    }

    @Test
    void tagValidation() {
        Image a = image(s.accountA, null);
        String path = "/v1/images/" + a.uuid() + "/tag";
        for (String body : List.of("{}", "{\"tag\":\"\"}", "{\"tag\":\" spaced \"}", "{\"tag\":\"-lead\"}", "{\"tag\":5}",
                "{\"tag\":\"" + "x".repeat(300) + "\"}", "[1]", "not json", "{\"tag\":\"a\",\"tag\":\"b\"}")) {
            var r = s.json(s.tokenA, "PATCH", path, body);
            assertThat(r.status()).as(body).isEqualTo(400);
            assertThat(r.json().get("error").asText()).as(body).isNotBlank();
        }
        assertThat(s.get(s.tokenA, "/v1/inspect/" + a.uuid()).json().get("tag").isNull()).isTrue();
        assertThat(s.json(s.tokenA, "PATCH", "/v1/images/00000000-0000-0000-0000-000000000000/tag", "{\"tag\":\"x\"}").status()).isEqualTo(404);
        assertThat(s.json(s.tokenA, "PATCH", "/v1/images/bad/tag", "{\"tag\":\"x\"}").status()).isEqualTo(400);
    }

    @Test
    void untag() {
        Image a = image(s.accountA, "keep:1");
        var wrong = s.delete(s.tokenA, "/v1/images/" + a.uuid() + "/tag?tag=other");
        assertThat(wrong.status()).isEqualTo(409);
        var done = s.delete(s.tokenA, "/v1/images/" + a.uuid() + "/tag?tag=keep:1");
        assertThat(done.status()).isEqualTo(200);
        assertThat(done.json().get("tag").isNull()).isTrue();
        image(s.accountA, "again");
        Image b = image(s.accountA, "b");
        assertThat(s.delete(s.tokenA, "/v1/images/" + b.uuid() + "/tag").json().get("tag").isNull()).isTrue();
        assertThat(s.delete(s.tokenA, "/v1/images/00000000-0000-0000-0000-000000000000/tag").status()).isEqualTo(404);
    }

    @Test
    void inspectFindsByTagWithRelativeRedirect() {
        Image a = image(s.accountA, "ubuntu:latest");
        var r = s.get(s.tokenA, "/v1/inspect/?tag=ubuntu:latest");
        assertThat(r.status()).isEqualTo(302);
        assertThat(r.header("Location")).isEqualTo(a.uuid() + "/");
        var slashless = s.get(s.tokenA, "/v1/inspect?tag=ubuntu:latest");
        assertThat(slashless.status()).isEqualTo(302);
        assertThat(java.net.URI.create(s.url("/v1/inspect")).resolve(slashless.header("Location")).getPath())
                .isEqualTo("/v1/inspect/" + a.uuid() + "/");
        assertThat(s.get(s.tokenA, "/v1/inspect/?tag=nope").status()).isEqualTo(404);
        var noTag = s.get(s.tokenA, "/v1/inspect/");
        assertThat(noTag.status()).isEqualTo(400);
        assertThat(noTag.json().get("error").asText()).isEqualTo("tag is required");

        var record = s.get(s.tokenA, "/v1/inspect/" + a.uuid() + "/");
        assertThat(record.status()).isEqualTo(200);
        assertThat(record.json().get("uuid").asText()).isEqualTo(a.uuid());
        assertThat(s.get(s.tokenA, "/v1/inspect/" + a.uuid()).status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + a.uuid().toUpperCase() + "/").status()).isEqualTo(200);
    }

    @Test
    void accountsAreIsolated() {
        Image alices = image(s.accountA, "shared-name");
        assertThat(uuids(s.get(s.tokenB, "/v1/images").json())).isEmpty();
        assertThat(s.get(s.tokenB, "/v1/inspect/" + alices.uuid() + "/").status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, "/v1/inspect/?tag=shared-name").status()).isEqualTo(404);
        assertThat(s.json(s.tokenB, "PATCH", "/v1/images/" + alices.uuid() + "/tag", "{\"tag\":\"stolen\"}").status()).isEqualTo(404);
        assertThat(s.delete(s.tokenB, "/v1/images/" + alices.uuid() + "/tag").status()).isEqualTo(404);
        // The same tag name in another account is independent.
        var bobs = s.server.services().images().create(new ImageService.NewImage(
                s.server.services().tokens().verify(s.tokenB).orElseThrow().accountId(), null, null, List.of(), ImageConfig.EMPTY, 0, "shared-name"));
        assertThat(s.get(s.tokenA, "/v1/inspect/?tag=shared-name").header("Location")).isEqualTo(alices.uuid() + "/");
        assertThat(s.get(s.tokenB, "/v1/inspect/?tag=shared-name").header("Location")).isEqualTo(bobs.uuid() + "/");
    }

    static List<String> uuids(JsonNode body) {
        List<String> out = new ArrayList<>();
        body.get("images").forEach(i -> out.add(i.get("uuid").asText()));
        return out;
    }
}

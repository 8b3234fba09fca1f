package dev.contree.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import dev.contree.operations.OperationKind;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.contree.fuzz.Answers.rejected;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Auth on every route (missing, malformed, unknown, revoked, expired tokens → 401) and account
 * isolation on every route (account B against account A's image, tag, file, operations, events,
 * inspect subroutes, diff, lineage, cancel, tag/untag → 404, never 200/403; A unchanged after).
 */
class AuthAndIsolationFuzzTest extends FuzzTestBase {
    static final String TAG = "a/base:1";
    static String imageB, pendingOp;

    @BeforeAll
    static void start() throws Exception {
        serve("contree-authfuzz", c -> c.withRuntime("runc", "ptrace"), TAG, "a's secret file");
        var svc = s.server.services();
        // A non-terminal operation of A's (never scheduled, so it stays PENDING) for the cancel route.
        pendingOp = svc.operations().create(s.accountA, OperationKind.INSTANCE, image, dev.contree.TestRequests.execution("true", image)).uuid();
        String accountB = svc.tokens().verify(s.tokenB).orElseThrow().accountId();
        imageB = svc.images().create(new ImageService.NewImage(accountB, null, null, List.of(), ImageConfig.EMPTY, 0, null)).uuid();
        before = Answers.snapshot(s, dir, s.tokenA);
    }

    /** Every route, filled in with A's real objects. */
    static List<String[]> routes() {
        String i = image, o = importOp;
        return List.of(
                new String[]{"GET", "/v1/whoami"},
                new String[]{"POST", "/v1/files"},
                new String[]{"GET", "/v1/files"},
                new String[]{"GET", "/v1/files?sha256=" + fileSha},
                new String[]{"HEAD", "/v1/files?sha256=" + fileSha},
                new String[]{"GET", "/v1/files?uuid=" + fileUuid},
                new String[]{"HEAD", "/v1/files?uuid=" + fileUuid},
                new String[]{"GET", "/v1/files/" + fileSha},
                new String[]{"HEAD", "/v1/files/" + fileSha},
                new String[]{"GET", "/v1/images"},
                new String[]{"POST", "/v1/images/import"},
                new String[]{"PATCH", "/v1/images/" + i + "/tag"},
                new String[]{"DELETE", "/v1/images/" + i + "/tag"},
                new String[]{"DELETE", "/v1/images/" + i + "/tag?tag=" + TAG},
                new String[]{"GET", "/v1/images/" + i + "/lineage"},
                new String[]{"GET", "/v1/inspect/?tag=" + TAG},
                new String[]{"GET", "/v1/inspect?tag=" + TAG},
                new String[]{"GET", "/v1/inspect/" + i + "/"},
                new String[]{"GET", "/v1/inspect/" + i},
                new String[]{"GET", "/v1/inspect/" + i + "/list?path=/etc"},
                new String[]{"GET", "/v1/inspect/" + i + "/list?path=/etc&text"},
                new String[]{"GET", "/v1/inspect/" + i + "/download?path=/etc/passwd"},
                new String[]{"HEAD", "/v1/inspect/" + i + "/download?path=/etc/passwd"},
                new String[]{"GET", "/v1/inspect/" + i + "/archive?path=/etc"},
                new String[]{"HEAD", "/v1/inspect/" + i + "/archive?path=/etc"},
                new String[]{"GET", "/v1/inspect/" + i + "/grep?pattern=root"},
                new String[]{"GET", "/v1/inspect/" + i + "/diff/" + i},
                new String[]{"GET", "/v1/inspect/" + i + "/diff/" + imageB},
                new String[]{"GET", "/v1/inspect/" + imageB + "/diff/" + i},
                new String[]{"GET", "/v1/operations"},
                new String[]{"GET", "/v1/operations/" + o},
                new String[]{"GET", "/v1/operations/" + pendingOp},
                new String[]{"DELETE", "/v1/operations/" + pendingOp},
                new String[]{"DELETE", "/v1/operations/" + o},
                new String[]{"GET", "/v1/operations/" + o + "/events"},
                new String[]{"GET", "/v1/operations/" + o + "/events?follow=1"},
                new String[]{"GET", "/v1/operations/" + pendingOp + "/events?follow=1"},
                new String[]{"POST", "/v1/instances"},
                new String[]{"GET", "/v1/no-such-route"});
    }

    static byte[] body(String method, String path) {
        if (path.equals("/v1/files")) return "x".getBytes(StandardCharsets.UTF_8);
        if (path.equals("/v1/images/import")) return ("{\"registry\":{\"url\":\"rootfs+file://" + fileUuid + "\"}}").getBytes(StandardCharsets.UTF_8);
        if (path.equals("/v1/instances")) return ("{\"command\":\"true\",\"image\":\"" + image + "\"}").getBytes(StandardCharsets.UTF_8);
        if (method.equals("PATCH")) return "{\"tag\":\"stolen\"}".getBytes(StandardCharsets.UTF_8);
        return null;
    }

    static RawHttp.Response send(String method, String path, String authorization) {
        Map<String, String> h = new LinkedHashMap<>();
        if (authorization != null) h.put("Authorization", authorization);
        h.put("Content-Type", "application/json");
        return raw.send(method, path.getBytes(StandardCharsets.UTF_8), h, body(method, path), RawHttp.BodyMode.NORMAL);
    }

    @Test
    void badTokensAre401OnEveryRoute() throws Exception {
        var start = Answers.snapshot(s, dir, s.tokenA, s.tokenB); // blobs included: a 401 upload stores nothing
        var tokens = s.server.services().tokens();
        var revoked = tokens.issue("carol", "revoked", null);
        assertThat(tokens.revoke(revoked.token().uuid())).isEqualTo(1);
        var expired = tokens.issue("dave", "expired", Instant.now().minusSeconds(1));
        List<String> bad = new ArrayList<>(java.util.Arrays.asList(null, "", " ", "Bearer", "Bearer ", "Bearer  ", "Basic x",
                "Basic " + java.util.Base64.getEncoder().encodeToString(("alice:" + s.tokenA).getBytes(StandardCharsets.UTF_8)),
                "bearer  token  extra", "Bearer " + s.tokenA + " extra", "Bearer tökén-ünïcödé", "Bearer " + s.tokenA + "ü",
                "Bearer\t" + s.tokenA.substring(1), "Token " + s.tokenA, s.tokenA, "Bearer " + s.tokenA.toUpperCase(),
                "Bearer " + "x".repeat(4000), "Bearer unknown-token", "Bearer " + revoked.secret(), "Bearer " + expired.secret()));
        int n = 0;
        for (String[] route : routes()) {
            for (String auth : bad) {
                var r = rejected(send(route[0], route[1], auth), route[0]);
                assertThat(r.status()).as("%s with Authorization '%s': %s", route[1], auth, r).isEqualTo(401);
                n++;
            }
        }
        System.out.println("auth fuzz: " + n + " requests");
        assertThat(Answers.snapshot(s, dir, s.tokenA, s.tokenB)).isEqualTo(start);
        assertThat(Answers.snapshot(s, dir, s.tokenA).state()).isEqualTo(before.state());
    }

    @Test
    void otherAccountGets404OnEveryRoute() throws Exception {
        String b = "Bearer " + s.tokenB;
        for (String[] route : routes()) {
            var r = send(route[0], route[1], b);
            Answers.wellFormed(r, route[0]);
            String p = route[1];
            if (p.equals("/v1/whoami")) {
                assertThat(r.status()).isEqualTo(200);
            } else if (p.equals("/v1/files") && route[0].equals("POST")) {
                assertThat(r.status()).isEqualTo(201); // B's own upload
            } else if (p.equals("/v1/files") || p.equals("/v1/images") || p.equals("/v1/operations")) {
                assertThat(r.status()).isEqualTo(200);
                for (String id : List.of(image, fileUuid, fileSha, importOp, pendingOp)) assertThat(r.text()).as(p).doesNotContain(id);
            } else {
                assertThat(r.status()).as("B on A's %s %s: %s", route[0], p, r).isEqualTo(404);
            }
        }
        // Lookups that answer a list rather than 404.
        assertThat(s.get(s.tokenB, "/v1/images?uuid=" + image).json().get("images")).isEmpty();
        assertThat(s.get(s.tokenB, "/v1/images?tag=a/").json().get("images")).isEmpty();
        // B's spawn using A's file in `files`, on B's own image: 404 for the file.
        var spawn = s.json(s.tokenB, "POST", "/v1/instances", "{\"command\":\"true\",\"image\":\"" + imageB
                + "\",\"files\":{\"/x\":{\"uuid\":\"" + fileUuid + "\"}}}");
        assertThat(spawn.status()).as(spawn.text()).isEqualTo(404);
        // Spawn by A's tag name resolves in B's namespace only.
        assertThat(s.json(s.tokenB, "POST", "/v1/instances", "{\"command\":\"true\",\"image\":\"tag:" + TAG + "\"}").status()).isEqualTo(404);
        assertThat(s.json(s.tokenB, "POST", "/v1/instances", "{\"command\":\"true\",\"image\":\"" + TAG + "\"}").status()).isEqualTo(404);
        // Tags are per account: B using A's tag name on its own image does not move A's tag.
        var tagged = s.json(s.tokenB, "PATCH", "/v1/images/" + imageB + "/tag", "{\"tag\":\"" + TAG + "\"}");
        assertThat(tagged.status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/").json().get("tag").asText()).isEqualTo(TAG);
        assertThat(s.delete(s.tokenB, "/v1/images/" + imageB + "/tag?tag=" + TAG).status()).isEqualTo(200);

        // A's objects are unchanged; its pending operation is still cancellable by A alone.
        var after = Answers.snapshot(s, dir, s.tokenA); // (the blob store is shared: B's own upload is in it)
        assertThat(after.state()).isEqualTo(before.state());
        assertThat(after.tmp()).isEmpty();
        assertThat(s.get(s.tokenA, "/v1/operations/" + pendingOp).json().get("status").asText()).isEqualTo("PENDING");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/etc/hostname").text()).isEqualTo("busybox\n");
        JsonNode whoamiB = s.get(s.tokenB, "/v1/whoami").json();
        assertThat(whoamiB.toString()).doesNotContain(image);
    }
}

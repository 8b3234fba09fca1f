package dev.contree.explorer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import dev.contree.images.Image;
import dev.contree.images.ImageConfig;
import dev.contree.images.ImageService;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

import static org.assertj.core.api.Assertions.assertThat;

/** The explorer's routes under {@code /v1/x-contree/tree}: paging, bounds, bad input, account isolation, node digests. */
class TreeRoutesTest {
    private static final String TREE = "/v1/x-contree/tree";
    static TestServer s;
    static String accountB;

    @BeforeAll
    static void start() throws IOException {
        s = TestServer.inTempDir("tree-routes", c -> c.withRuntime("runc", "ptrace"));
        accountB = s.server.services().tokens().verify(s.tokenB).orElseThrow().accountId();
    }

    @AfterAll
    static void stop() {
        if (s != null) s.close();
    }

    static Image image(String account, String parent, String tag) {
        return s.server.services().images().create(new ImageService.NewImage(account, null, parent, List.of(), ImageConfig.EMPTY, 0, tag));
    }

    static List<String> uuids(JsonNode page) {
        List<String> out = new ArrayList<>();
        page.get("nodes").forEach(n -> out.add(n.get("image").get("uuid").asText()));
        return out;
    }

    @Test
    void childrenComePageByPageOldestFirstWithTheirCounts() {
        Image root = image(s.accountA, null, "paging-root");
        List<String> kids = new ArrayList<>();
        for (int i = 0; i < 7; i++) kids.add(image(s.accountA, root.uuid(), null).uuid());
        image(s.accountA, kids.get(2), null);
        image(s.accountA, kids.get(2), null);

        List<String> seen = new ArrayList<>();
        int offset = 0;
        int pages = 0;
        while (true) {
            JsonNode page = s.get(s.tokenA, TREE + "/" + root.uuid() + "/children?limit=3&offset=" + offset).json();
            assertThat(page.get("parent").asText()).isEqualTo(root.uuid());
            seen.addAll(uuids(page));
            pages++;
            if (page.get("next_offset").isNull()) break;
            offset = page.get("next_offset").asInt();
        }
        assertThat(pages).isEqualTo(3);
        assertThat(seen).containsExactlyElementsOf(kids);
        JsonNode third = s.get(s.tokenA, TREE + "/" + root.uuid() + "/children?limit=3").json().get("nodes").get(2);
        assertThat(third.get("children").asInt()).isEqualTo(2);
        assertThat(third.get("operation").isNull()).isTrue();
        assertThat(s.get(s.tokenA, TREE + "/" + kids.get(6) + "/children").json().get("nodes")).isEmpty();
    }

    @Test
    void rootsAreImagesWithoutAParentOrWhoseParentIsGone() {
        Image r1 = image(s.accountA, null, null);
        Image child = image(s.accountA, r1.uuid(), null);
        Image orphan = image(s.accountA, UUID.randomUUID().toString(), null);
        List<String> all = new ArrayList<>();
        int offset = 0;
        while (true) {
            JsonNode page = s.get(s.tokenA, TREE + "/roots?limit=1&offset=" + offset).json();
            assertThat(page.get("nodes").size()).isLessThanOrEqualTo(1);
            all.addAll(uuids(page));
            if (page.get("next_offset").isNull()) break;
            offset = page.get("next_offset").asInt();
        }
        assertThat(all).contains(r1.uuid(), orphan.uuid()).doesNotContain(child.uuid()).doesNotHaveDuplicates();
        // newest first
        assertThat(all.indexOf(orphan.uuid())).isLessThan(all.indexOf(r1.uuid()));
    }

    @Test
    void aNodeCarriesItsPathFromTheRoot() {
        Image root = image(s.accountA, null, null);
        List<String> chain = new ArrayList<>(List.of(root.uuid()));
        for (int i = 0; i < 4; i++) chain.add(image(s.accountA, chain.getLast(), null).uuid());
        JsonNode node = s.get(s.tokenA, TREE + "/" + chain.getLast()).json();
        assertThat(node.get("image").get("uuid").asText()).isEqualTo(chain.getLast());
        List<String> path = new ArrayList<>();
        node.get("path").forEach(p -> path.add(p.asText()));
        assertThat(path).containsExactlyElementsOf(chain.subList(0, 4));
        assertThat(s.get(s.tokenA, TREE + "/" + root.uuid()).json().get("path")).isEmpty();
    }

    @Test
    void searchFindsTagAndUuidPrefixesExactTagFirst() {
        Image longer = image(s.accountA, null, "findme-longer");
        Image exact = image(s.accountA, null, "findme");
        List<String> byTag = uuids(s.get(s.tokenA, TREE + "/search?q=findme").json());
        assertThat(byTag).containsExactly(exact.uuid(), longer.uuid());
        assertThat(uuids(s.get(s.tokenA, TREE + "/search?q=" + longer.uuid().substring(0, 13)).json())).containsExactly(longer.uuid());
        assertThat(uuids(s.get(s.tokenA, TREE + "/search?q=findme&limit=1").json())).containsExactly(exact.uuid());
        assertThat(uuids(s.get(s.tokenA, TREE + "/search?q=nothing-like-this").json())).isEmpty();
    }

    @Test
    void anotherAccountSeesNothing() {
        Image alices = image(s.accountA, null, "alice-only");
        Image kid = image(s.accountA, alices.uuid(), null);
        Image bobs = image(accountB, null, "bob-root");
        assertThat(uuids(s.get(s.tokenB, TREE + "/roots?limit=500").json())).containsExactly(bobs.uuid());
        assertThat(uuids(s.get(s.tokenA, TREE + "/roots?limit=500").json())).doesNotContain(bobs.uuid());
        assertThat(s.get(s.tokenB, TREE + "/" + alices.uuid() + "/children").status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, TREE + "/" + kid.uuid()).status()).isEqualTo(404);
        assertThat(uuids(s.get(s.tokenB, TREE + "/search?q=alice").json())).isEmpty();
        assertThat(uuids(s.get(s.tokenB, TREE + "/search?q=" + alices.uuid().substring(0, 8)).json())).isEmpty();
        // A child of Bob's made on Alice's image cannot exist; one whose parent uuid is Alice's is a root for Bob, never a way in.
        Image sneaky = image(accountB, alices.uuid(), null);
        JsonNode node = s.get(s.tokenB, TREE + "/" + sneaky.uuid()).json();
        assertThat(node.get("path")).isEmpty();
        assertThat(uuids(s.get(s.tokenB, TREE + "/roots?limit=500").json())).contains(sneaky.uuid());
        assertThat(s.get(s.tokenA, TREE + "/" + alices.uuid()).json().get("children").asInt()).isEqualTo(1);
    }

    @Test
    void badInputIsA4xxWithAMessage() {
        Image root = image(s.accountA, null, null);
        String children = TREE + "/" + root.uuid() + "/children";
        for (String path : List.of(children + "?limit=0", children + "?limit=501", children + "?limit=x", children + "?offset=-1",
                children + "?offset=100001", TREE + "/roots?offset=100001", TREE + "/roots?limit=100000", TREE + "/not-a-uuid", TREE + "/not-a-uuid/children", TREE + "/search",
                TREE + "/search?q=", TREE + "/search?q=a%20b", TREE + "/search?q=%25", TREE + "/search?q=a&limit=51",
                TREE + "/search?q=" + "a".repeat(256), TREE + "/active?limit=0", TREE + "/operation/nope")) {
            var r = s.get(s.tokenA, path);
            assertThat(r.status()).as(path).isEqualTo(400);
            assertThat(r.json().get("error").asText()).as(path).isNotBlank();
        }
        String unknown = UUID.randomUUID().toString();
        assertThat(s.get(s.tokenA, TREE + "/" + unknown).status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, TREE + "/" + unknown + "/children").status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, TREE + "/operation/" + unknown).status()).isEqualTo(404);
        assertThat(s.get(null, TREE + "/roots").status()).isEqualTo(401);
        assertThat(s.get("wrong", TREE + "/roots").status()).isEqualTo(401);
        assertThat(s.get(s.tokenA, children + "?limit=500").status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, children + "?offset=100000").json().get("nodes")).isEmpty();
        assertThat(s.get(s.tokenA, TREE + "/roots?offset=100001").json().get("error").asText()).contains("100000");
    }

    @Test
    void runningOperationsArePendingNodesUnderTheirImageAndDigestsTellTheOutcome() throws Exception {
        String image = s.importBusybox(null);
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"sleep 30\",\"shell\":true}");
        JsonNode active = s.get(s.tokenA, TREE + "/active").json().get("operations");
        JsonNode mine = null;
        for (JsonNode o : active) if (o.get("uuid").asText().equals(op)) mine = o;
        assertThat(mine).as(active.toString()).isNotNull();
        assertThat(mine.get("image_uuid").asText()).isEqualTo(image);
        assertThat(mine.get("outcome").asText()).isEqualTo("running");
        assertThat(mine.get("command").asText()).isEqualTo("sleep 30");
        assertThat(s.get(s.tokenB, TREE + "/active").json().get("operations")).isEmpty();
        assertThat(s.get(s.tokenB, TREE + "/operation/" + op).status()).isEqualTo(404);

        assertThat(s.delete(s.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
        s.await(s.tokenA, op, Duration.ofSeconds(30));
        assertThat(s.get(s.tokenA, TREE + "/operation/" + op).json().get("outcome").asText()).isEqualTo("cancelled");

        String failing = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"echo x > /f; exit 7\",\"shell\":true}");
        JsonNode done = s.await(s.tokenA, failing, Duration.ofSeconds(30));
        JsonNode digest = s.get(s.tokenA, TREE + "/operation/" + failing).json();
        assertThat(digest.get("outcome").asText()).isEqualTo("nonzero");
        assertThat(digest.get("exit_code").asInt()).isEqualTo(7);
        assertThat(digest.get("timed_out").asBoolean()).isFalse();
        // busybox's image is shared with the other tests, which may have given it children too.
        JsonNode child = null;
        for (JsonNode n : s.get(s.tokenA, TREE + "/" + image + "/children").json().get("nodes")) {
            if (n.get("image").get("uuid").asText().equals(done.get("result_image_uuid").asText())) child = n;
        }
        assertThat(child).isNotNull();
        assertThat(child.get("operation").get("outcome").asText()).isEqualTo("nonzero");
        JsonNode root = s.get(s.tokenA, TREE + "/" + image).json();
        assertThat(root.get("operation").get("outcome").asText()).isEqualTo("import");
        assertThat(root.get("operation").get("kind").asText()).isEqualTo("image_import");
    }

    @Test
    void aPageOfChildrenWithLargeOutputsShowsEachOperationsFields() throws Exception {
        // A parent of this test's own: busybox's image is shared with the other tests.
        String busybox = s.importBusybox(null);
        String image = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + busybox
                + "\",\"command\":\"echo loud > /parent\",\"shell\":true}"), Duration.ofSeconds(60)).get("result_image_uuid").asText();
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            // 512 KiB on stdout and on stderr each: the page reads none of it, and answers the same fields.
            ops.add(s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"yes a | head -c 524288;"
                    + " yes b | head -c 524288 >&2; echo " + i + " > /f; exit " + i + "\",\"shell\":true}"));
        }
        List<JsonNode> full = new ArrayList<>();
        for (String op : ops) full.add(s.await(s.tokenA, op, Duration.ofSeconds(60)));
        JsonNode nodes = s.get(s.tokenA, TREE + "/" + image + "/children").json().get("nodes");
        assertThat(nodes).hasSize(3);
        for (int i = 0; i < 3; i++) {
            JsonNode whole = full.get(i), metadata = whole.get("metadata"), state = metadata.get("result").get("state");
            assertThat(metadata.get("result").get("stdout").get("value").asText()).hasSize(524288);
            // Oldest image first: the three ran at once, so in the order they finished.
            JsonNode node = null;
            for (JsonNode n : nodes) if (n.get("image").get("uuid").asText().equals(whole.get("result_image_uuid").asText())) node = n;
            assertThat(node).as(nodes.toString()).isNotNull();
            JsonNode o = node.get("operation");
            assertThat(o.get("uuid").asText()).isEqualTo(ops.get(i));
            assertThat(o.get("kind").asText()).isEqualTo("instance");
            assertThat(o.get("status").asText()).isEqualTo("SUCCESS");
            assertThat(o.get("image_uuid").asText()).isEqualTo(image);
            assertThat(o.get("result_image_uuid").asText()).isEqualTo(whole.get("result_image_uuid").asText());
            assertThat(o.get("created_at")).isEqualTo(whole.get("created_at"));
            assertThat(o.get("command")).isEqualTo(metadata.get("command"));
            assertThat(o.get("args")).isEqualTo(metadata.get("args"));
            assertThat(o.get("shell")).isEqualTo(metadata.get("shell"));
            assertThat(o.get("disposable")).isEqualTo(metadata.get("disposable"));
            assertThat(o.get("exit_code")).isEqualTo(state.get("exit_code"));
            assertThat(o.get("exit_code").asInt()).isEqualTo(i);
            assertThat(o.get("signal")).isEqualTo(state.get("signal"));
            assertThat(o.get("timed_out")).isEqualTo(state.get("timed_out"));
            assertThat(o.get("outcome").asText()).isEqualTo(i == 0 ? "ok" : "nonzero");
            assertThat(o.has("error")).isFalse();
            assertThat(s.get(s.tokenA, TREE + "/operation/" + ops.get(i)).json()).isEqualTo(o);
        }
    }

    @Test
    void theUiIsServedWithTypesAndCacheHeadersAndNoAuth() {
        var redirect = s.get(null, "/ui");
        assertThat(redirect.status()).isEqualTo(301);
        assertThat(redirect.header("Location")).isEqualTo("/ui/");
        var index = s.get(null, "/ui/");
        assertThat(index.status()).isEqualTo(200);
        assertThat(index.header("Content-Type")).startsWith("text/html");
        assertThat(index.header("Cache-Control")).isEqualTo("no-cache");
        assertThat(index.header("Content-Security-Policy")).contains("default-src 'none'", "connect-src 'self'");
        assertThat(index.header("Set-Cookie")).isNull();
        var m = java.util.regex.Pattern.compile("src=\"(main-[A-Z0-9]{8}\\.js)\"").matcher(index.text());
        assertThat(m.find()).as(index.text()).isTrue();
        var js = s.get(null, "/ui/" + m.group(1));
        assertThat(js.status()).isEqualTo(200);
        assertThat(js.header("Content-Type")).startsWith("text/javascript");
        assertThat(js.header("Cache-Control")).contains("immutable");
        var css = java.util.regex.Pattern.compile("href=\"(style-[A-Z0-9]{8}\\.css)\"").matcher(index.text());
        assertThat(css.find()).isTrue();
        assertThat(s.get(null, "/ui/" + css.group(1)).header("Content-Type")).startsWith("text/css");
        assertThat(index.text()).doesNotContain("http://", "https://");
        for (String bad : List.of("/ui/nope.js", "/ui/..%2Fcontree.jar", "/ui/%2e%2e/x", "/ui/dev/contree/Main.class", "/ui/.hidden")) {
            assertThat(s.get(null, bad).status()).as(bad).isIn(400, 404);
        }
    }
}

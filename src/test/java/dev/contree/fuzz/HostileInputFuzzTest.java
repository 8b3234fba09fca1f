package dev.contree.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.fuzz.RawHttp.BodyMode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

import static dev.contree.fuzz.Answers.rejected;
import static dev.contree.fuzz.Answers.wellFormed;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Hostile API input over every route: malformed, deeply nested and oversized JSON, wrong types for
 * every field, huge numbers, invalid UTF-8, path traversal, truncated uploads, bad ids, unknown
 * parameters. Every answer must be a well-formed 4xx (never 5xx, never a hang) and nothing the
 * rejected requests touched may change. Reproduce a failure with {@code -Dfuzz.seed=N}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class HostileInputFuzzTest extends FuzzTestBase {
    static final long SEED = Long.getLong("fuzz.seed", 0x5eed_c0deL);
    static final int MAX_JSON = 64 * 1024;
    static final long MAX_UPLOAD = 8L << 20;
    static final ObjectMapper M = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.USE_BIG_INTEGER_FOR_INTS);
    static final String NO_SUCH = "00000000-0000-4000-8000-000000000000";
    static final String TAG = "fuzz/base:1";

    static String child, spawnOp;
    static int sent;

    @BeforeAll
    static void start() throws Exception {
        serve("contree-fuzz", c -> c.withRuntime("runc", "ptrace").withLimits(MAX_UPLOAD, MAX_JSON, 2), TAG, "fuzz file");
        spawnOp = s.start(s.tokenA, "/v1/instances", "{\"command\":\"echo hi > /hello\",\"shell\":true,\"image\":\"" + image + "\"}");
        JsonNode done = s.await(s.tokenA, spawnOp, Duration.ofSeconds(60));
        assertThat(done.get("status").asText()).as("setup spawn: %s", done).isEqualTo("SUCCESS");
        child = done.get("result").get("image").asText();
        before = Answers.snapshot(s, dir, s.tokenA, s.tokenB);
    }

    @AfterAll
    static void stop() throws Exception {
        System.out.println("hostile input fuzz: seed=" + SEED + " requests=" + sent);
    }

    // ---------------------------------------------------------------- plumbing

    static Map<String, String> headers(String... kv) {
        Map<String, String> h = new LinkedHashMap<>();
        h.put("Authorization", "Bearer " + s.tokenA);
        for (int i = 0; i + 1 < kv.length; i += 2) h.put(kv[i], kv[i + 1]);
        return h;
    }

    static RawHttp.Response send(String method, byte[] target, Map<String, String> headers, byte[] body, BodyMode mode) {
        sent++;
        return raw.send(method, target, headers, body, mode);
    }

    static RawHttp.Response send(String method, String target, byte[] body, String... kv) {
        return send(method, target.getBytes(StandardCharsets.UTF_8), headers(kv), body, BodyMode.NORMAL);
    }

    static RawHttp.Response json(String method, String target, byte[] body) {
        return send(method, target, body, "Content-Type", "application/json");
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (byte[] p : parts) b.writeBytes(p);
        return b.toByteArray();
    }

    /** The JSON routes; the targets are chosen so that a body that parsed would still create nothing. */
    static List<String[]> jsonRoutes() {
        return List.of(
                new String[]{"POST", "/v1/instances"},
                new String[]{"POST", "/v1/images/import"},
                new String[]{"PATCH", "/v1/images/" + image + "/tag"},
                new String[]{"PATCH", "/v1/images/" + NO_SUCH + "/tag"});
    }

    // ---------------------------------------------------------------- 1. bodies

    static Map<String, byte[]> hostileBodies(Random rnd) {
        Map<String, byte[]> b = new LinkedHashMap<>();
        b.put("empty", new byte[0]);
        b.put("whitespace", utf8("  \r\n\t "));
        for (String m : List.of("{", "}", "{\"a\":", "{\"command\": \"x\",}", "{'tag':'x'}", "{\"tag\":\"x\"}}", "{\"tag\":\"a\"} {\"tag\":\"b\"}",
                "[", "nul", "{\"a\":tru}", "{\"a\":\"\\u00\"}", "{\"a\":\"unterminated", "{\"a\":1,,}", "/* c */{}", "{\"a\":NaN}",
                "{\"a\":Infinity}", "{\"a\":01}", "{\"a\":.5}", "{\"a\" 1}", "{1:2}", "{\"tag\":\"x\"\u0000}", "\u0000")) {
            b.put("malformed " + m, utf8(m));
        }
        b.put("deep objects 10000", utf8("{\"a\":".repeat(10_000) + "1" + "}".repeat(10_000)));
        b.put("deep arrays 10000", utf8("[".repeat(10_000) + "]".repeat(10_000)));
        b.put("deep unclosed 10000", utf8("[".repeat(10_000)));
        b.put("deep inside a field", utf8("{\"command\":\"true\",\"image\":\"" + NO_SUCH + "\",\"env\":" + "{\"a\":".repeat(5_000) + "1" + "}".repeat(5_000) + "}"));
        for (String top : List.of("[]", "\"str\"", "42", "null", "true", "[{\"tag\":\"x\"}]")) b.put("top-level " + top, utf8(top));
        b.put("invalid utf-8 in a string", concat(utf8("{\"tag\":\""), new byte[]{(byte) 0xff, (byte) 0xfe}, utf8("\",\"command\":\"x\"}")));
        b.put("overlong utf-8 slash", concat(utf8("{\"tag\":\"a"), new byte[]{(byte) 0xc0, (byte) 0xaf}, utf8("b\"}")));
        b.put("truncated utf-8 sequence", concat(utf8("{\"tag\":\"a"), new byte[]{(byte) 0xe2, (byte) 0x82}, utf8("\"}")));
        b.put("lone surrogate escape", utf8("{\"tag\":\"\\ud800\",\"command\":\"\\udfff\",\"image\":\"" + NO_SUCH + "\",\"registry\":\"\\ud800\"}"));
        // Jackson reads UTF-16/32 with a BOM; only the content decides (here: an invalid tag, no command).
        b.put("utf-16 body", "{\"tag\":\"bad tag\"}".getBytes(StandardCharsets.UTF_16));
        b.put("utf-32 body", concat(new byte[]{0, 0, 0, '{'}, new byte[]{0, 0, 0, '}'}));
        b.put("bom", concat(new byte[]{(byte) 0xef, (byte) 0xbb, (byte) 0xbf}, utf8("{}")));
        b.put("duplicate keys", utf8("{\"tag\":\"fuzz/dup\",\"tag\":\"fuzz/dup2\",\"command\":\"x\",\"command\":\"y\",\"image\":\"" + NO_SUCH + "\"}"));
        b.put("duplicate nested keys", utf8("{\"registry\":{\"url\":\"a\",\"url\":\"b\"},\"command\":\"true\",\"image\":\"" + NO_SUCH + "\",\"env\":{\"A\":\"1\",\"A\":\"2\"}}"));
        b.put("NUL in strings", utf8("{\"tag\":\"a\\u0000b\",\"command\":\"a\\u0000b\",\"image\":\"" + NO_SUCH + "\",\"registry\":\"a\\u0000b\"}"));
        b.put("oversized string", utf8("{\"tag\":\"" + "x".repeat(MAX_JSON + 10) + "\"}"));
        b.put("oversized whitespace", utf8(" ".repeat(MAX_JSON + 1) + "{}"));
        b.put("huge number literal", utf8("{\"timeout\":" + "9".repeat(5000) + ",\"tag\":" + "1".repeat(2000) + "}"));
        b.put("huge exponent", utf8("{\"timeout\":1e999999999,\"tag\":1e400}"));
        for (int i = 0; i < 12; i++) {
            byte[] r = new byte[1 + rnd.nextInt(i < 6 ? 64 : 4096)];
            rnd.nextBytes(r);
            if (i % 3 == 0) r[0] = '{';
            b.put("random bytes #" + i, r);
        }
        return b;
    }

    @Test
    @Order(1)
    void hostileBodiesOnEveryJsonRoute() {
        Random rnd = new Random(SEED);
        List<String> contentTypes = List.of("application/json", "application/json; charset=utf-8", "text/plain", "application/octet-stream", "");
        for (String[] route : jsonRoutes()) {
            for (var body : hostileBodies(rnd).entrySet()) {
                String ct = contentTypes.get(rnd.nextInt(contentTypes.size()));
                var r = ct.isEmpty() ? send(route[0], route[1], body.getValue()) : send(route[0], route[1], body.getValue(), "Content-Type", ct);
                rejected(r, route[0]);
                if (body.getKey().startsWith("oversized")) assertThat(r.status()).as("%s", r).isEqualTo(413);
                if (body.getKey().startsWith("malformed") || body.getKey().startsWith("deep") || body.getKey().startsWith("top-level")
                        || body.getKey().startsWith("duplicate")) {
                    assertThat(r.status()).as("%s: %s", body.getKey(), r).isEqualTo(400);
                }
            }
        }
    }

    @Test
    @Order(2)
    void truncatedAndCutBodies() {
        byte[] valid = utf8("{\"command\":\"true\",\"image\":\"" + NO_SUCH + "\",\"tag\":\"x\",\"registry\":\"a\"}");
        for (String[] route : jsonRoutes()) {
            for (BodyMode mode : List.of(BodyMode.SHORT, BodyMode.CHUNK_CUT)) {
                rejected(send(route[0], utf8(route[1]), headers("Content-Type", "application/json"), valid, mode), route[0]);
            }
            // A correct chunked JSON body is fine (and then rejected for its content only).
            rejected(send(route[0], utf8(route[1]), headers("Content-Type", "application/json"), utf8("{}"), BodyMode.CHUNKED), route[0]);
        }
        // Uploads: a lying Content-Length and a chunk cut short store nothing.
        byte[] blob = new byte[200_000];
        new Random(SEED).nextBytes(blob);
        for (BodyMode mode : List.of(BodyMode.SHORT, BodyMode.CHUNK_CUT)) {
            rejected(send("POST", utf8("/v1/files"), headers("Content-Type", "application/octet-stream"), blob, mode), "POST");
        }
        // An upload over the limit, with and without a Content-Length.
        byte[] big = new byte[(int) MAX_UPLOAD + 1];
        for (BodyMode mode : List.of(BodyMode.NORMAL, BodyMode.CHUNKED)) {
            var r = rejected(send("POST", utf8("/v1/files"), headers("Content-Type", "application/octet-stream"), big, mode), "POST");
            assertThat(r.status()).as("%s", r).isEqualTo(413);
        }
    }

    @Test
    @Order(3)
    void brokenFraming() {
        // Framing errors Jetty sees before any route: still a 4xx, never a hang.
        List<String> heads = List.of(
                "POST /v1/instances HTTP/1.1\r\nContent-Length: -1\r\n",
                "POST /v1/instances HTTP/1.1\r\nContent-Length: abc\r\n",
                "POST /v1/instances HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n",
                "POST /v1/instances HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n",
                "POST /v1/files HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                "POST /v1/files HTTP/1.1\r\nTransfer-Encoding: gzip\r\n",
                "POST /v1/files HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n",
                "GET /v1/whoami HTTP/9.9\r\n",
                "GET /v1/whoami\r\n",
                "GET  /v1/whoami  HTTP/1.1\r\n",
                "get /v1/whoami HTTP/1.1\r\n",
                "GET v1/whoami HTTP/1.1\r\n",
                "GET /v1/whoami HTTP/1.1\r\nBad Header Line\r\n",
                "GET /v1/whoami HTTP/1.1\r\n: no-name\r\n",
                "GET /v1/whoami HTTP/1.1\r\nX-Big: " + "x".repeat(64 * 1024) + "\r\n",
                "GET /v1/" + "a".repeat(20_000) + " HTTP/1.1\r\n");
        for (String h : heads) {
            String req = h.contains("\r\n\r\n") ? h : h + "Host: x\r\nConnection: close\r\nAuthorization: Bearer " + s.tokenA + "\r\n\r\n";
            sent++;
            var r = raw.exchange(RawHttp.ascii(req), new byte[0], true, false, RawHttp.printable(RawHttp.ascii(h)));
            if (h.contains("HTTP/9.9") || h.equals("GET /v1/whoami\r\n")) {
                // The one protocol-level 5xx: 505 HTTP Version Not Supported (9.9, and 0.9 = no version) is what the status exists for.
                assertThat(r.status()).as("%s", r).isEqualTo(505);
                assertThat(r.json().get("status").asInt()).isEqualTo(505);
                continue;
            }
            // Jetty tolerates extra spaces in the request line: any well-formed answer will do.
            if (h.startsWith("GET  ")) wellFormed(r, "GET");
            else rejected(r, "GET");
        }
    }

    @Test
    @Order(3)
    void preRoutingRejectionsCloseTheConnection() {
        // A HEAD Jetty rejects before routing is answered like a GET (with a body): the connection must then close,
        // so a keep-alive client cannot misread that body as the next response.
        for (String m : List.of("HEAD", "GET")) {
            String req = m + " /v1/files/%00 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + s.tokenA + "\r\n\r\n";
            sent++;
            var r = raw.exchange(RawHttp.ascii(req), new byte[0], false, false, m + " /v1/files/%00 keep-alive");
            assertThat(r.status()).as("%s", r).isEqualTo(400);
            assertThat(r.header("Connection")).as("%s", r).isEqualToIgnoringCase("close");
        }
    }

    // ---------------------------------------------------------------- 2. wrong types for every field

    static final List<String> WRONG = List.of("\"str\"", "\"\"", "123", "0", "-1", "1.5", "1e400", "-1e400", "9223372036854775808",
            "-9223372036854775809", "18446744073709551616", "1e18", "true", "false", "null", "[]", "[1,\"a\",null]", "{}", "{\"x\":1}",
            "\"\\u0000\"", "\"" + "y".repeat(5000) + "\"", "\"../../etc/passwd\"", "\"\\ud800\"");

    /** field path → the JSON types it accepts (s=string b=boolean n=number o=object a=array; 'R' = required). */
    static Map<String, String> spawnFields() {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("command", "sR");
        f.put("image", "sR");
        f.put("shell", "b");
        f.put("args", "a");
        f.put("args.0", "s");
        f.put("env", "o");
        f.put("env.K", "snb");
        f.put("preserve_env", "b");
        f.put("cwd", "s");
        f.put("hostname", "s");
        f.put("disposable", "b");
        f.put("stdin", "so");
        f.put("stdin.value", "s");
        f.put("stdin.encoding", "s");
        f.put("timeout", "n");
        f.put("truncate_output_at", "n");
        f.put("files", "o");
        f.put("files./f", "oR");
        f.put("files./f.uuid", "sR");
        f.put("files./f.mode", "sn");
        f.put("files./f.uid", "n");
        f.put("files./f.gid", "n");
        f.put("uid", "n");
        f.put("gid", "n");
        f.put("resources_limits", "o");
        f.put("resources_limits.max_layer_bytes", "n");
        f.put("networking", "o");
        f.put("networking.enabled", "b");
        return f;
    }

    static Map<String, String> importFields() {
        Map<String, String> f = new LinkedHashMap<>();
        f.put("registry", "osR");
        f.put("registry.url", "sR");
        f.put("registry.credentials", "o");
        f.put("registry.credentials.username", "s");
        f.put("registry.credentials.password", "s");
        f.put("tag", "s");
        f.put("timeout", "n");
        return f;
    }

    static String spawnBase() {
        return "{\"command\":\"true\",\"image\":\"" + NO_SUCH + "\",\"shell\":false,\"args\":[\"a\"],\"env\":{\"K\":\"v\"},"
                + "\"preserve_env\":false,\"cwd\":\"/\",\"hostname\":\"h\",\"disposable\":true,\"stdin\":{\"value\":\"aGk=\",\"encoding\":\"base64\"},"
                + "\"timeout\":10,\"truncate_output_at\":1000,\"files\":{\"/f\":{\"uuid\":\"" + fileUuid + "\",\"mode\":\"0644\",\"uid\":0,\"gid\":0}},"
                + "\"uid\":0,\"gid\":0,\"resources_limits\":{\"max_layer_bytes\":1000000},\"networking\":{\"enabled\":false}}";
    }

    static String importBase() {
        return "{\"registry\":{\"url\":\"rootfs+file://" + NO_SUCH + "\",\"credentials\":{\"username\":\"u\",\"password\":\"p\"}},"
                + "\"tag\":\"fuzz/imported:1\",\"timeout\":60}";
    }

    static String typeOf(JsonNode v) {
        if (v.isTextual()) return "s";
        if (v.isBoolean()) return "b";
        if (v.isNumber()) return "n";
        if (v.isObject()) return "o";
        if (v.isArray()) return "a";
        return "null";
    }

    static ObjectNode with(String base, String path, JsonNode value) throws Exception {
        ObjectNode root = (ObjectNode) M.readTree(base);
        JsonNode parent = root;
        String[] parts = path.split("\\.");
        for (int i = 0; i < parts.length - 1; i++) parent = parent.get(parts[i]);
        String last = parts[parts.length - 1];
        if (parent.isArray()) ((com.fasterxml.jackson.databind.node.ArrayNode) parent).set(Integer.parseInt(last), value);
        else ((ObjectNode) parent).set(last, value);
        return root;
    }

    @Test
    @Order(4)
    void wrongTypesForEveryField() throws Exception {
        // The base bodies are valid but name an image / file that does not exist: 404, nothing created.
        assertThat(rejected(json("POST", "/v1/instances", utf8(spawnBase())), "POST").status()).isEqualTo(404);
        assertThat(rejected(json("POST", "/v1/images/import", utf8(importBase())), "POST").status()).isEqualTo(404);
        for (var route : List.of(Map.entry("/v1/instances", spawnFields()), Map.entry("/v1/images/import", importFields()))) {
            String base = route.getKey().equals("/v1/instances") ? spawnBase() : importBase();
            for (var field : route.getValue().entrySet()) {
                for (String w : WRONG) {
                    JsonNode value = M.readTree(w);
                    // Any well-typed string there is a registry reference that would really start an import.
                    if (field.getKey().matches("registry(\\.url)?") && value.isTextual()) continue;
                    ObjectNode body = with(base, field.getKey(), value);
                    var r = rejected(json("POST", route.getKey(), M.writeValueAsBytes(body)), "POST");
                    String t = typeOf(value);
                    boolean typeOk = field.getValue().contains(t) || (t.equals("null") && !field.getValue().contains("R"));
                    if (!typeOk) assertThat(r.status()).as("%s=%s must be a 400: %s", field.getKey(), w, r).isEqualTo(400);
                }
            }
        }
        // PATCH tag: every wrong type, on a real image (must stay as it is) and on a missing one.
        for (String w : WRONG) {
            // A string of the right form would be a valid tag: strings only against a missing image.
            for (String target : w.startsWith("\"") ? List.of(NO_SUCH) : List.of(image, NO_SUCH)) {
                var r = rejected(json("PATCH", "/v1/images/" + target + "/tag", utf8("{\"tag\":" + w + "}")), "PATCH");
                if (target.equals(image)) assertThat(r.status()).as("tag=%s: %s", w, r).isEqualTo(400);
            }
        }
        for (String badTag : List.of(" ", "-lead", "trail-", "a b", "a\tb", "ä", "..", "/abs", "x".repeat(300), "a\u0000b", "%", "a*", "a\nb")) {
            var r = rejected(json("PATCH", "/v1/images/" + image + "/tag", M.writeValueAsBytes(M.createObjectNode().put("tag", badTag))), "PATCH");
            assertThat(r.status()).as("tag %s: %s", badTag, r).isEqualTo(400);
            rejected(json("POST", "/v1/images/import", M.writeValueAsBytes(((ObjectNode) M.readTree(importBase())).put("tag", badTag))), "POST");
        }
    }

    // ---------------------------------------------------------------- 3. paths, ids, queries

    static final List<String> BAD_IDS = List.of("x", "null", "-1", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
            "0000000g-0000-0000-0000-000000000000", "{uuid}", "%2e%2e", "..", "%2e%2e%2fetc", "%00", "%ff%fe", "%c0%af", "%20",
            "a".repeat(5000), "%E2%80%AE", "00000000000000000000000000000000", "'%20OR%201=1--", "*");

    static final List<String> BAD_SHAS = List.of("g".repeat(64), "a".repeat(63), "a".repeat(65), "..%2f..%2fetc%2fpasswd", "%00",
            "%ff", "a".repeat(10_000), "%2e%2e");

    /** Every route, with placeholders {img} {other} {op} {sha}. */
    static final List<String[]> ROUTES = List.of(
            new String[]{"GET", "/v1/whoami"},
            new String[]{"POST", "/v1/files"},
            new String[]{"GET", "/v1/files"},
            new String[]{"HEAD", "/v1/files"},
            new String[]{"GET", "/v1/files/{sha}"},
            new String[]{"HEAD", "/v1/files/{sha}"},
            new String[]{"GET", "/v1/images"},
            new String[]{"POST", "/v1/images/import"},
            new String[]{"PATCH", "/v1/images/{img}/tag"},
            new String[]{"DELETE", "/v1/images/{img}/tag"},
            new String[]{"GET", "/v1/images/{img}/lineage"},
            new String[]{"GET", "/v1/inspect/"},
            new String[]{"GET", "/v1/inspect/{img}/"},
            new String[]{"GET", "/v1/inspect/{img}/list"},
            new String[]{"GET", "/v1/inspect/{img}/download"},
            new String[]{"HEAD", "/v1/inspect/{img}/download"},
            new String[]{"GET", "/v1/inspect/{img}/archive"},
            new String[]{"HEAD", "/v1/inspect/{img}/archive"},
            new String[]{"GET", "/v1/inspect/{img}/grep"},
            new String[]{"GET", "/v1/inspect/{img}/diff/{other}"},
            new String[]{"GET", "/v1/operations"},
            new String[]{"GET", "/v1/operations/{op}"},
            new String[]{"DELETE", "/v1/operations/{op}"},
            new String[]{"GET", "/v1/operations/{op}/events"},
            new String[]{"POST", "/v1/instances"});

    static final List<String> PARAMS = List.of("limit", "offset", "since", "until", "tag", "tagged", "uuid", "sha256", "kind", "status",
            "path", "text", "pattern", "glob", "max_count", "max_total", "case", "follow", "spid", "inflight", "zzz_unknown", "", "%ff");

    static final List<String> VALUES = List.of("", "0", "-1", "1", "1000", "1001", "2147483648", "9223372036854775808", "1e400", "-0", "1.5",
            "abc", "%ff%fe", "%00", "%", "%zz", "%c0%af", "+1", "0x10", "%EF%BC%91", "%20", "true", "yes", "maybe",
            "+999999999-12-31T23:59:59Z", "-999999999-01-01T00:00:00Z", "9999999999999999999999999w", "2026-13-45T99:99:99Z",
            "..%2f..%2f..%2fetc%2fpasswd", "%2fproc%2fself%2froot", "(", "[", "a{99999999999}", "*", "!", "{{{", "PENDING", "instance",
            "INSENSITIVE", "x".repeat(3000));

    static String fill(String template, Random rnd, boolean valid) {
        String img = valid || rnd.nextInt(3) == 0 ? (rnd.nextBoolean() ? image : NO_SUCH) : BAD_IDS.get(rnd.nextInt(BAD_IDS.size()));
        String other = valid || rnd.nextInt(3) == 0 ? child : BAD_IDS.get(rnd.nextInt(BAD_IDS.size()));
        String op = valid || rnd.nextInt(3) == 0 ? (rnd.nextBoolean() ? importOp : NO_SUCH) : BAD_IDS.get(rnd.nextInt(BAD_IDS.size()));
        String sha = valid || rnd.nextInt(3) == 0 ? (rnd.nextBoolean() ? fileSha : "a".repeat(64)) : BAD_SHAS.get(rnd.nextInt(BAD_SHAS.size()));
        return template.replace("{img}", img).replace("{other}", other).replace("{op}", op).replace("{sha}", sha);
    }

    @Test
    @Order(5)
    void randomPathsAndQueriesOnEveryRoute() {
        Random rnd = new Random(SEED + 5);
        for (String[] route : ROUTES) {
            for (int i = 0; i < 12; i++) {
                String path = fill(route[1], rnd, false);
                StringBuilder q = new StringBuilder();
                int n = rnd.nextInt(4);
                for (int k = 0; k < n; k++) {
                    q.append(k == 0 ? "?" : "&").append(PARAMS.get(rnd.nextInt(PARAMS.size())));
                    if (rnd.nextInt(5) > 0) q.append('=').append(VALUES.get(rnd.nextInt(VALUES.size())));
                }
                String method = route[0];
                // Never a request that could legitimately change A's state: untag always names a wrong tag,
                // a tag PATCH or a spawn/import/upload body is never valid.
                if (method.equals("DELETE") && route[1].contains("/tag")) q.append(q.isEmpty() ? "?" : "&").append("tag=not-the-tag");
                byte[] body = switch (method) {
                    case "POST", "PATCH" -> route[1].equals("/v1/files") ? null : hostileBodies(rnd).values().stream().skip(rnd.nextInt(30)).findFirst().orElseThrow();
                    default -> rnd.nextInt(4) == 0 ? utf8("{\"junk\":true}") : null;
                };
                Map<String, String> h = headers("Content-Type", "application/json");
                if (route[1].endsWith("/events") && rnd.nextBoolean()) h.put("Last-Event-Id", VALUES.get(rnd.nextInt(VALUES.size())));
                if (route[1].equals("/v1/files") && method.equals("POST")) {
                    // An upload with a body always succeeds; fuzz only its transport.
                    body = new byte[1 + rnd.nextInt(5000)];
                    rnd.nextBytes(body);
                    var r = send(method, utf8(path + q), h, body, rnd.nextBoolean() ? BodyMode.SHORT : BodyMode.CHUNK_CUT);
                    rejected(r, method);
                    continue;
                }
                var r = send(method, utf8(path + q), h, body, BodyMode.NORMAL);
                wellFormed(r, method);
                if (r.status() == 200 && method.equals("GET") && route[1].endsWith("/events")) assertThat(r.header("Content-Type")).startsWith("text/event-stream");
                if (method.equals("DELETE") || method.equals("PATCH") || method.equals("POST")) {
                    assertThat(r.status()).as("mutating request rejected: %s", r).isBetween(400, 499);
                }
            }
        }
    }

    @Test
    @Order(6)
    void deterministicBadIdsAndQueryValues() {
        // Every bad id in every id position: 4xx.
        for (String[] route : ROUTES) {
            if (!route[1].contains("{")) continue;
            for (String bad : route[1].contains("{sha}") ? BAD_SHAS : BAD_IDS) {
                String path = route[1].replace("{img}", bad).replace("{op}", bad).replace("{sha}", bad).replace("{other}", bad);
                var r = send(route[0], path + (route[1].contains("/tag") && route[0].equals("DELETE") ? "?tag=x" : ""),
                        route[0].equals("PATCH") ? utf8("{\"tag\":\"fuzz/never\"}") : null, "Content-Type", "application/json");
                rejected(r, route[0]);
            }
        }
        // Every bad value for every typed query parameter: 400 (or 404 for a lookup).
        Map<String, List<String>> typed = new LinkedHashMap<>();
        typed.put("/v1/images?", List.of("limit", "offset", "tagged", "uuid", "since", "until"));
        typed.put("/v1/files?", List.of("limit", "offset", "since", "until", "sha256", "uuid"));
        typed.put("/v1/operations?", List.of("limit", "offset", "since", "until", "status", "kind"));
        typed.put("/v1/operations/" + importOp + "/events?", List.of("since", "spid", "follow"));
        typed.put("/v1/inspect/" + image + "/grep?pattern=root&", List.of("max_count", "max_total", "case"));
        for (var e : typed.entrySet()) {
            for (String p : e.getValue()) {
                for (String v : List.of("abc", "-1", "1e400", "9223372036854775808", "%ff%fe", "%00", "+999999999-12-31T23:59:59Z",
                        "-999999999-01-01T00:00:00Z", "2026-13-45T99:99:99Z", "x".repeat(3000))) {
                    var r = send("GET", e.getKey() + p + "=" + v, null);
                    wellFormed(r, "GET");
                }
            }
        }
        // Invalid UTF-8 raw in the request target and percent-encoded in values.
        for (byte[] target : List.of(concat(utf8("/v1/images?tag="), new byte[]{(byte) 0xff, (byte) 0xfe}),
                concat(utf8("/v1/inspect/" + image + "/list?path=/"), new byte[]{(byte) 0xc0, (byte) 0xaf}),
                concat(utf8("/v1/"), new byte[]{(byte) 0x80}, utf8("whoami")),
                utf8("/v1/inspect/?tag=%ff%fe"), utf8("/v1/images?tag=%c0%af&limit=%ff"),
                utf8("/v1/inspect/" + image + "/download?path=%ff%fe"), utf8("/v1/inspect/" + image + "/grep?pattern=%ff&path=%c0"))) {
            var r = send("GET", target, headers(), null, BodyMode.NORMAL);
            wellFormed(r, "GET");
        }
        // Methods no route has.
        for (String m : List.of("PUT", "OPTIONS", "TRACE", "PROPFIND", "FOO")) {
            for (String path : List.of("/v1/whoami", "/v1/images/" + image + "/tag", "/v1/operations/" + importOp, "/v1/nothing")) {
                var r = send(m, path, null);
                rejected(r, m);
            }
        }
    }

    @Test
    @Order(7)
    void pathTraversalInInspect() {
        String imagePasswd = s.get(s.tokenA, "/v1/inspect/" + image + "/download?path=/etc/passwd").text();
        assertThat(imagePasswd).startsWith("root:x:0:0:root:/root:/bin/sh");
        for (String p : List.of("../../../../etc/passwd", "/../../../etc/passwd", "/etc/../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd",
                "%2e%2e/%2e%2e/etc/passwd", "/proc/self/root/etc/passwd", "/proc/1/root/etc/passwd", "/proc/self/environ",
                "/dev/../../etc/passwd", "//etc//passwd", "/etc/passwd%00.txt", "/etc/./passwd/.", "/etc/passwd/", "/bin/sh/../../etc/passwd",
                "....//....//etc/passwd", "/\\..\\..\\etc\\passwd", "~root/.ssh", "/" + "a/".repeat(3000), "/" + "b".repeat(5000))) {
            for (String sub : List.of("download", "list", "archive", "grep?pattern=root&x=")) {
                String target = "/v1/inspect/" + image + "/" + sub + (sub.contains("?") ? "&path=" : "?path=") + p;
                for (String m : sub.equals("download") || sub.equals("archive") ? List.of("GET", "HEAD") : List.of("GET")) {
                    var r = wellFormed(send(m, target, null), m);
                    if (r.status() == 200 && m.equals("GET") && sub.equals("download")) {
                        // Anything served comes from the image, never from the host.
                        assertThat(r.text()).as("%s", r).isEqualTo(imagePasswd);
                    }
                    if (r.status() == 200 && m.equals("GET") && sub.startsWith("grep")) {
                        for (JsonNode match : r.json().get("matches")) assertThat(match.get("path").asText()).doesNotStartWith("/proc");
                    }
                }
            }
        }
    }

    @Test
    @Order(8)
    void pathTraversalInSpawnFiles() throws Exception {
        // Against A's real image, so that anything the parser let through would run: every case must be a 400.
        for (String p : List.of("../etc/passwd", "/../../etc/passwd", "/tmp/../../../etc/shadow", "relative", "", "/", "//", "/./.", "/a/..",
                "/a\u0000b", "/" + "c".repeat(256), "/" + "d/".repeat(2100), "..", "/tmp/..", "/x/../../../proc/self/root/etc/passwd")) {
            ObjectNode body = (ObjectNode) M.readTree("{\"command\":\"true\",\"image\":\"" + image + "\",\"disposable\":true}");
            body.putObject("files").putObject(p).put("uuid", fileUuid);
            var r = rejected(json("POST", "/v1/instances", M.writeValueAsBytes(body)), "POST");
            assertThat(r.status()).as("files key %s: %s", p, r).isEqualTo(400);
        }
        for (String cwd : List.of("relative", "/a\u0000", "/" + "e".repeat(5000))) {
            ObjectNode body = (ObjectNode) M.readTree("{\"command\":\"true\",\"image\":\"" + image + "\",\"disposable\":true}");
            body.put("cwd", cwd);
            assertThat(rejected(json("POST", "/v1/instances", M.writeValueAsBytes(body)), "POST").status()).isEqualTo(400);
        }
    }

    // ---------------------------------------------------------------- 4. nothing changed

    @Test
    @Order(100)
    void dataDirUnchangedAndServerHealthy() throws Exception {
        var after = Answers.snapshot(s, dir, s.tokenA, s.tokenB);
        assertThat(after.state()).isEqualTo(before.state());
        assertThat(after.blobs()).isEqualTo(before.blobs());
        assertThat(after.tmp()).as("no stray upload temp files").isEmpty();
        var img = s.get(s.tokenA, "/v1/inspect/" + image + "/").json();
        assertThat(img.get("tag").asText()).isEqualTo(TAG);
        assertThat(s.get(s.tokenA, "/v1/whoami").status()).isEqualTo(200);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/hello").text()).isEqualTo("hi\n");
        // And still does real work.
        var up = s.upload(s.tokenA, "after the fuzz".getBytes(StandardCharsets.UTF_8));
        assertThat(up.status()).isEqualTo(201);
        String op = s.start(s.tokenA, "/v1/instances", "{\"command\":\"cat /hello\",\"image\":\"" + child + "\",\"disposable\":true}");
        assertThat(s.await(s.tokenA, op, Duration.ofSeconds(60)).get("status").asText()).isEqualTo("SUCCESS");
    }
}

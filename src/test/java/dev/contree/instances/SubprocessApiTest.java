package dev.contree.instances;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AutoClose;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Live instances through the real API on runc: the four subprocess routes of API.md §3.7 used the way the official
 * clients use them (one parent instance, several commands in it, one event stream), and their refusals.
 */
class SubprocessApiTest {
    @AutoClose static TestServer s;
    static String base;

    @BeforeAll
    static void start() throws Exception {
        s = TestServer.inTempDir("live", c -> c.withRuntime("runc", "ptrace").withLimits(1L << 30, 256L << 20, 4));
        base = s.importBusybox("busybox:live");
    }

    /** Spawns a parent instance and waits until it runs (the official client's wait_running). */
    static String parent(String extra) {
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"sleep 60\",\"shell\":true,"
                + "\"timeout\":120" + extra + "}");
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (true) {
            String status = s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText();
            if (status.equals("EXECUTING")) return op;
            assertThat(status).as("parent status").isIn("PENDING", "ASSIGNED");
            assertThat(System.nanoTime()).as("parent never ran").isLessThan(deadline);
            sleep(20);
        }
    }

    static int create(String op, String body) {
        TestServer.Reply r = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses", body);
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        return r.json().get("spid").asInt();
    }

    /** Polls the folded record until exit_code or signal leaves -1 (the clients' wait_subprocess_terminal). */
    static JsonNode waitExit(String op, int spid) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            TestServer.Reply r = s.get(s.tokenA, "/v1/operations/" + op + "/subprocesses/" + spid);
            assertThat(r.status()).as(r.text()).isEqualTo(200);
            JsonNode state = r.json().get("state");
            if (state.get("exit_code").asInt() != -1 || state.get("signal").asInt() != -1) return r.json();
            assertThat(System.nanoTime()).as("subprocess %d never ended", spid).isLessThan(deadline);
            sleep(20);
        }
    }

    static String text(JsonNode repr) {
        String v = repr.get("value").asText();
        return repr.get("encoding").asText().equals("base64") ? new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8) : v;
    }

    static List<JsonNode> events(String op, String query) {
        String body = s.get(s.tokenA, "/v1/operations/" + op + "/events" + query).text();
        List<JsonNode> out = new ArrayList<>();
        for (String line : body.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            try {
                out.add(new com.fasterxml.jackson.databind.ObjectMapper().readTree(line.substring(6)));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return out;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void oneInstanceServesSeveralCommandsAsTheOfficialClientDoes() {
        String op = parent(",\"disposable\":true");
        int echo = create(op, "{\"command\":\"echo marker-1\",\"shell\":true}");
        assertThat(echo).isGreaterThanOrEqualTo(2);
        JsonNode result = waitExit(op, echo);
        assertThat(result.get("state").get("exit_code").asInt()).isZero();
        assertThat(text(result.get("stdout"))).isEqualTo("marker-1\n");

        int cat = create(op, "{\"command\":\"cat\",\"stdin\":{\"value\":\"\",\"close\":false}}");
        assertThat(cat).isNotEqualTo(echo);
        TestServer.Reply w = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses/" + cat + "/stdin",
                "{\"value\":\"first \"}");
        assertThat(w.status()).as(w.text()).isEqualTo(204);
        w = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses/" + cat + "/stdin",
                "{\"value\":\"" + Base64.getEncoder().encodeToString("second\n".getBytes()) + "\",\"encoding\":\"base64\",\"close\":true}");
        assertThat(w.status()).as(w.text()).isEqualTo(204);
        assertThat(text(waitExit(op, cat).get("stdout"))).isEqualTo("first second\n");

        int sleeper = create(op, "{\"command\":\"sleep 60\",\"shell\":true}");
        TestServer.Reply k = s.delete(s.tokenA, "/v1/operations/" + op + "/subprocesses/" + sleeper + "?signal=TERM");
        assertThat(k.status()).as(k.text()).isEqualTo(204);
        JsonNode killed = waitExit(op, sleeper);
        assertThat(killed.get("state").get("signal").asInt()).isEqualTo(15);
        assertThat(killed.get("state").get("exit_code").asInt()).isEqualTo(-1);

        // The parent is still up after all that.
        assertThat(s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText()).isEqualTo("EXECUTING");
        assertThat(s.delete(s.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
        assertThat(s.await(s.tokenA, op, Duration.ofSeconds(30)).get("status").asText()).isEqualTo("CANCELLED");

        // One event log: every spid's spawn and exit, in order, each exit after its own spawn. (CANCELLED is
        // recorded at once; following the log waits for its completion event.)
        List<JsonNode> all = events(op, "?follow=1");
        for (int spid : List.of(echo, cat, sleeper)) {
            List<String> kinds = all.stream().filter(e -> e.get("spid").asInt() == spid).map(e -> e.get("type").asText()).toList();
            assertThat(kinds.getFirst()).isEqualTo("spawn");
            assertThat(kinds.getLast()).isEqualTo("exit");
        }
        assertThat(all.getLast().get("type").asText()).isEqualTo("completion");
        List<JsonNode> onlyCat = events(op, "?spid=" + cat);
        assertThat(onlyCat).allMatch(e -> e.get("spid").asInt() == cat || e.get("type").asText().equals("completion"));
        assertThat(onlyCat.stream().filter(e -> e.get("type").asText().equals("stdout")).count()).isPositive();
    }

    @Test
    void terminatingTheMainProcessSnapshotsEverySubprocesssWrites() {
        String op = parent("");
        int a = create(op, "{\"command\":\"echo from-a > /a.txt\",\"shell\":true}");
        int b = create(op, "{\"command\":\"mkdir -p /work && echo from-b > /work/b.txt\",\"shell\":true}");
        assertThat(waitExit(op, a).get("state").get("exit_code").asInt()).isZero();
        assertThat(waitExit(op, b).get("state").get("exit_code").asInt()).isZero();
        int lingering = create(op, "{\"command\":\"sleep 50\",\"shell\":true}");

        assertThat(s.delete(s.tokenA, "/v1/operations/" + op + "/subprocesses/1?signal=TERM").status()).isEqualTo(204);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(30));
        assertThat(done.get("status").asText()).isEqualTo("SUCCESS");
        assertThat(done.get("metadata").get("result").get("state").get("signal").asInt()).isEqualTo(15);
        String child = done.get("result").get("image").asText();
        assertThat(child).isNotEqualTo(base);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/a.txt").text()).isEqualTo("from-a\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/work/b.txt").text()).isEqualTo("from-b\n");
        // The lingering subprocess was killed with the instance, and its record says so.
        JsonNode gone = waitExit(op, lingering);
        assertThat(gone.get("state").get("signal").asInt()).isEqualTo(9);
        assertThat(events(op, "").stream().filter(e -> e.get("spid").asInt() == lingering
                && e.get("type").asText().equals("exit"))).hasSize(1);
    }

    @Test
    void aSubprocessHasItsOwnIdentityEnvironmentDirectoryAndTimeout() {
        String op = parent(",\"disposable\":true,\"env\":{\"FROM_PARENT\":\"p\"}");
        int who = create(op, "{\"command\":\"id -u; id -g; echo $FROM_PARENT-$OWN; pwd\",\"shell\":true,"
                + "\"uid\":1000,\"gid\":1001,\"env\":{\"OWN\":\"o\"},\"cwd\":\"/tmp/sub/dir\"}");
        assertThat(text(waitExit(op, who).get("stdout")).lines().toList()).containsExactly("1000", "1001", "p-o", "/tmp/sub/dir");

        int slow = create(op, "{\"command\":\"sleep 30\",\"shell\":true,\"timeout\":1}");
        JsonNode timedOut = waitExit(op, slow);
        assertThat(timedOut.get("state").get("timed_out").asBoolean()).isTrue();
        assertThat(timedOut.get("state").get("signal").asInt()).isEqualTo(9);
        assertThat(s.get(s.tokenA, "/v1/operations/" + op).json().get("status").asText()).isEqualTo("EXECUTING");

        int missing = create(op, "{\"command\":\"no-such-binary\"}");
        assertThat(waitExit(op, missing).get("state").get("exit_code").asInt()).isEqualTo(127);
        s.delete(s.tokenA, "/v1/operations/" + op);
        s.await(s.tokenA, op, Duration.ofSeconds(30));
    }

    @Test
    void theMainProcessStdinStaysOpenWhenTheSpawnSaysSo() {
        String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"cat\",\"disposable\":true,"
                + "\"stdin\":{\"value\":\"one \",\"close\":false}}");
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        TestServer.Reply w;
        do { // the parent may still be starting: the call waits, or says 425 while it is queued
            w = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses/1/stdin", "{\"value\":\"two\\n\",\"close\":true}");
            if (w.status() == 204) break;
            assertThat(w.status()).as(w.text()).isEqualTo(425);
            sleep(50);
        } while (System.nanoTime() < deadline);
        assertThat(w.status()).isEqualTo(204);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(30));
        assertThat(ExecutionTestBase.stdout(done)).isEqualTo("one two\n");
    }

    @Test
    void refusalsAreClearAndChangeNothing() {
        String op = parent(",\"disposable\":true");
        String sub = "/v1/operations/" + op + "/subprocesses";
        TestServer.Reply r = s.json(s.tokenA, "POST", sub, "{\"shell\":true}");
        assertThat(r.status()).isEqualTo(400);
        assertThat(r.json().get("error").asText()).contains("command");
        assertThat(s.json(s.tokenA, "POST", sub, "{\"command\":\"x\",\"uid\":-1}").status()).isEqualTo(400);
        assertThat(s.json(s.tokenA, "POST", sub, "{\"command\":\"x\",\"cwd\":\"relative\"}").status()).isEqualTo(400);
        assertThat(s.json(s.tokenA, "POST", sub, "{\"command\":\"x\",\"timeout\":999999}").status()).isEqualTo(400);
        assertThat(s.get(s.tokenA, sub + "/77").status()).isEqualTo(404);
        assertThat(s.delete(s.tokenA, sub + "/77").status()).isEqualTo(404);
        assertThat(s.get(s.tokenA, sub + "/zero").status()).isEqualTo(400);
        TestServer.Reply badSignal = s.delete(s.tokenA, sub + "/1?signal=BOGUS");
        assertThat(badSignal.status()).isEqualTo(400);
        assertThat(badSignal.json().get("error").asText()).contains("TERM");
        // Another account's instance does not exist for this one.
        assertThat(s.json(s.tokenB, "POST", sub, "{\"command\":\"true\"}").status()).isEqualTo(404);
        assertThat(s.get(s.tokenB, sub + "/1").status()).isEqualTo(404);
        // The main process's stdin closed after the (empty) request stdin.
        assertThat(s.json(s.tokenA, "POST", sub + "/1/stdin", "{\"value\":\"x\"}").status()).isEqualTo(409);
        // None of that started anything.
        assertThat(events(op, "").stream().filter(e -> e.get("spid").asInt() >= 2)).isEmpty();

        s.delete(s.tokenA, "/v1/operations/" + op);
        s.await(s.tokenA, op, Duration.ofSeconds(30));
        TestServer.Reply finished = s.json(s.tokenA, "POST", sub, "{\"command\":\"true\"}");
        assertThat(finished.status()).isEqualTo(409);
        assertThat(finished.json().get("error").asText()).contains("finished");
        assertThat(s.delete(s.tokenA, sub + "/1").status()).isEqualTo(409);

        String imported = s.get(s.tokenA, "/v1/operations?kind=image_import").json().get(0).get("uuid").asText();
        assertThat(s.json(s.tokenA, "POST", "/v1/operations/" + imported + "/subprocesses", "{\"command\":\"true\"}").status())
                .isEqualTo(409);
    }

    @Test
    void aQueuedParentAnswers425WithRetryAfter() {
        // With two accounts holding tokens, one account may run only its share of the slots.
        int slots = s.get(s.tokenA, "/v1/whoami").json().get("limits").get("account_max_concurrency").asInt();
        List<String> sleepers = new ArrayList<>();
        for (int i = 0; i < slots; i++) sleepers.add(parent(",\"disposable\":true"));
        String queued = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"true\",\"disposable\":true}");
        try {
            assertThat(s.get(s.tokenA, "/v1/operations/" + queued).json().get("status").asText()).isEqualTo("PENDING");
            TestServer.Reply r = s.json(s.tokenA, "POST", "/v1/operations/" + queued + "/subprocesses", "{\"command\":\"true\"}");
            assertThat(r.status()).as(r.text()).isEqualTo(425);
            assertThat(r.header("Retry-After")).isNotBlank();
        } finally {
            for (String op : sleepers) s.delete(s.tokenA, "/v1/operations/" + op);
            s.await(s.tokenA, queued, Duration.ofSeconds(60));
        }
    }
}

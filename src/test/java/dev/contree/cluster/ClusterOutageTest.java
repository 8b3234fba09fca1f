package dev.contree.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestPostgres;
import dev.contree.TestServer;
import dev.contree.operations.ClusterSettings;
import dev.contree.server.ServerConfig;
import dev.contree.store.postgres.PostgresUrl;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * PostgreSQL restarted under a running cluster: an {@code api} node and a {@code worker} node (two
 * {@code ContreeServer}s in this JVM, real runc sandboxes) on a PostgreSQL of this class's own
 * ({@link TestPostgres}), stopped with {@code pg_ctl stop -m fast} while a sandbox runs and started again on the same
 * port and data dir. Requests meanwhile answer 503 with a JSON message within the pool's bound; the sandbox is not
 * killed for the failed heartbeats; after the restart both nodes serve, the notification sessions are open again and
 * new work runs, without restarting any node. Starts several servers: run it under the heavy lock.
 */
class ClusterOutageTest {
    /** Long enough that the outage below (a failed heartbeat, then a restart) stays inside one lease. */
    private static final Duration LEASE = Duration.ofSeconds(30); // the default
    @TempDir static Path dir;
    static TestPostgres pg;
    static TestServer api;
    static TestServer worker;

    static UnaryOperator<ServerConfig> node(String url, ClusterSettings.Role role, String id) {
        return c -> c.withRuntime("runc", "ptrace").withExecutions(4, 3600).withDatabase(PostgresUrl.parse(url, null))
                .withCluster(new ClusterSettings(role, LEASE, id));
    }

    @BeforeAll
    static void start() throws Exception {
        pg = TestPostgres.start();
        String url = pg.createDatabase();
        api = new TestServer(dir.resolve("api"), node(url, ClusterSettings.Role.API, "api-1"));
        worker = new TestServer(dir.resolve("worker"), node(url, ClusterSettings.Role.WORKER, "worker-1"));
    }

    @AfterAll
    static void stop() throws Exception {
        for (TestServer s : new TestServer[]{api, worker}) {
            if (s != null) {
                try {
                    s.close();
                } catch (RuntimeException ignored) {
                    // closing what is left
                }
            }
        }
        for (String d : List.of("api", "worker")) TestDirs.removeWithMounts(dir.resolve(d));
        if (pg != null) pg.close();
    }

    static void await(String what, Duration within, BooleanSupplier condition, Supplier<String> diagnostics) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError(what + " within " + within.toSeconds() + " s; " + diagnostics.get());
            Thread.sleep(100);
        }
    }

    static String status(String op) {
        TestServer.Reply r = api.get(worker.tokenA, "/v1/operations/" + op);
        return r.status() == 200 ? r.json().get("status").asText() : r.status() + " " + r.text();
    }

    @Test
    void aDatabaseRestartIsRiddenOut() throws Exception {
        String image = worker.importBusybox("outage"); // an upload's import runs where the blob is: the worker
        // No output while the database is away: nothing of this run needs it until it ends.
        String sleeper = api.start(worker.tokenA, "/v1/instances",
                "{\"image\":\"" + image + "\",\"command\":\"sleep 40\",\"shell\":true,\"disposable\":true}");
        // Running, and past its last write before the exit: EXECUTING is recorded before the sandbox's spawn event is.
        await("the sandbox runs", Duration.ofSeconds(60), () -> worker.server.services().operations().events(sleeper, -1).stream()
                .anyMatch(e -> e.payload().type().equals("spawn")), () -> status(sleeper));
        long heartbeatsFailed = worker.server.cluster().failedHeartbeats();
        int apiReconnects = api.server.cluster().listenReconnects(), workerReconnects = worker.server.cluster().listenReconnects();

        pg.stopServer();
        long down = System.nanoTime();
        for (TestServer node : new TestServer[]{api, worker}) {
            long t0 = System.nanoTime();
            TestServer.Reply read = node.get(worker.tokenA, "/v1/operations/" + sleeper);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertThat(read.status()).as("a read while the database is down: %s", read.text()).isEqualTo(503);
            assertThat(read.json().get("error").asText()).as(read.text()).contains("database is unavailable");
            assertThat(read.text()).as("no stack trace on the wire").doesNotContain("\tat ", "Exception:");
            assertThat(read.header("Retry-After")).isNotNull();
            assertThat(seconds).as("answered within the pool's bound (5 s), not a hang").isLessThan(15);
            TestServer.Reply spawn = node.json(worker.tokenA, "POST", "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"true\"}");
            assertThat(spawn.status()).as("a spawn while the database is down: %s", spawn.text()).isEqualTo(503);
            System.out.printf("database down: %s answered 503 in %.2f s%n", node == api ? "api node" : "worker", seconds);
        }
        await("the worker's heartbeat fails", LEASE, () -> worker.server.cluster().failedHeartbeats() > heartbeatsFailed,
                () -> "failed heartbeats " + worker.server.cluster().failedHeartbeats());

        pg.startServer();
        double outage = (System.nanoTime() - down) / 1e9;
        long up = System.nanoTime();
        await("the api node serves again", Duration.ofSeconds(30), () -> api.get(worker.tokenA, "/v1/operations/" + sleeper).status() == 200,
                () -> status(sleeper));
        double serving = (System.nanoTime() - up) / 1e9;
        await("both notification sessions are open again", Duration.ofSeconds(30),
                () -> api.server.cluster().listenReconnects() > apiReconnects && worker.server.cluster().listenReconnects() > workerReconnects,
                () -> "reconnects api " + api.server.cluster().listenReconnects() + ", worker " + worker.server.cluster().listenReconnects());

        // The sandbox was not killed for the failed heartbeats: it ends as it would have, and is recorded.
        JsonNode slept = api.await(worker.tokenA, sleeper, Duration.ofSeconds(60));
        assertThat(slept.get("status").asText()).as("the run that spanned the outage: %s", slept).isEqualTo("SUCCESS");
        assertThat(worker.server.clusterHeld()).isZero();

        // New work, submitted to the api node, is claimed through the notification (the slow re-check is 30 s away).
        long t0 = System.nanoTime();
        String after = api.start(worker.tokenA, "/v1/instances",
                "{\"image\":\"" + image + "\",\"command\":\"echo after\",\"shell\":true,\"disposable\":true}");
        JsonNode done = api.await(worker.tokenA, after, Duration.ofSeconds(60));
        double ran = (System.nanoTime() - t0) / 1e9;
        assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        assertThat(ran).as("woken by its notification, not by the 30 s re-check").isLessThan(15);
        System.out.printf("database restart: down %.1f s; api node serving %.2f s after it was back; the run across it SUCCESS;"
                + " new run submit to SUCCESS %.2f s%n", outage, serving, ran);
    }
}

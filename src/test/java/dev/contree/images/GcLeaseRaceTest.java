package dev.contree.images;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.layers.LayerBuilder;
import dev.contree.layers.LayerStore;
import dev.contree.layers.LayerStoreConfig;
import dev.contree.server.Services;
import dev.contree.store.sqlite.SqliteStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Garbage collection with no grace period, passes back to back, against work that reuses layers: no recorded image
 * ever loses a layer. The grace period is not what keeps layers alive: leases are, held from before a layer is
 * looked up or committed until the image that references it is recorded, and a removal excludes leasing.
 */
class GcLeaseRaceTest {
    private static final Duration BOUND = Duration.ofSeconds(90);

    Path dir;

    @AfterEach
    void cleanup() throws Exception {
        TestDirs.removeWithMounts(dir);
    }

    /** A collector that runs passes back to back on its own thread until closed. */
    private static final class Collecting implements AutoCloseable {
        final AtomicInteger passes = new AtomicInteger();
        final AtomicInteger removed = new AtomicInteger();
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread thread;
        private volatile Throwable failure;

        Collecting(LayerGarbageCollector gc) {
            thread = Thread.ofPlatform().name("gc-race").start(() -> {
                while (!stop.get()) {
                    try {
                        removed.addAndGet(gc.collect());
                        passes.incrementAndGet();
                    } catch (Throwable t) {
                        failure = t;
                        return;
                    }
                }
            });
        }

        @Override
        public void close() throws Exception {
            stop.set(true);
            thread.join();
            if (failure != null) throw new AssertionError("a GC pass failed", failure);
        }
    }

    /**
     * Imports' reuse by digest: each worker looks its layer up by digest and leases it (or, when the collector took
     * it, builds and commits a new one under a reservation), records an image over it, releases its leases, and
     * checks the image's layer is there. Deleting the image then leaves the layer unreferenced for the next pass.
     */
    @Test
    void reuseByDigestNeverHandsOutAVanishingLayer() throws Exception {
        dir = Files.createTempDirectory("gc-race");
        LayerStore layers = LayerStore.open(dir.resolve("pool"), LayerStoreConfig.defaults().withImageSize(1L << 30));
        try (layers; SqliteStore db = SqliteStore.open(dir.resolve("contree.db"))) {
            String account = db.tokens().register("hash", "alice", "t", null).accountId();
            LayerIndex index = new LayerIndex(db.layers());
            LayerLeases leases = new LayerLeases(layers);
            ImageService images = new ImageService(db.images());
            LayerGarbageCollector gc = new LayerGarbageCollector(layers, index, leases, Duration.ZERO);

            int workers = 4, rounds = 150;
            AtomicInteger reused = new AtomicInteger(), rebuilt = new AtomicInteger();
            List<String> lost = Collections.synchronizedList(new ArrayList<>());
            long deadline = System.nanoTime() + BOUND.toNanos();
            try (Collecting collecting = new Collecting(gc);
                 ExecutorService pool = Executors.newFixedThreadPool(workers)) {
                List<Future<?>> done = new ArrayList<>();
                for (int w = 0; w < workers; w++) {
                    String digest = "sha256:" + Integer.toString(w).repeat(64);
                    done.add(pool.submit(() -> {
                        for (int r = 0; r < rounds && System.nanoTime() < deadline; r++) {
                            List<LayerLeases.Lease> held = new ArrayList<>();
                            String id = index.byDigest(digest).orElse(null);
                            if (id != null) {
                                try {
                                    held.add(leases.acquire(List.of(id)));
                                    reused.incrementAndGet();
                                } catch (LayerLeases.LayerGoneException gone) {
                                    index.forget(id);
                                    id = null;
                                }
                            }
                            if (id == null) {
                                LayerBuilder builder = layers.create();
                                Files.writeString(builder.diffDir().resolve("f"), digest);
                                held.add(leases.reserve(builder.id()));
                                id = builder.commit();
                                index.record(id, digest, 64);
                                rebuilt.incrementAndGet();
                            }
                            Image image = images.create(new ImageService.NewImage(account, null, null, List.of(id), ImageConfig.EMPTY, 64, null));
                            held.forEach(LayerLeases.Lease::close);
                            // Recorded and released: the image alone keeps its layer now.
                            if (!layers.exists(id)) lost.add("image " + image.uuid() + " lost layer " + id + " in round " + r);
                            db.images().delete(image.uuid());
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) f.get(BOUND.toSeconds() + 30, TimeUnit.SECONDS);
                assertThat(collecting.passes.get()).as("GC passes").isPositive();
            }
            assertThat(lost).isEmpty();
            assertThat(rebuilt.get()).as("layers the collector took and workers built again").isGreaterThan(workers);
            assertThat(reused.get()).as("layers reused by digest").isPositive();
        }
    }

    /**
     * The real jobs: executions that each commit a layer over a chain they reuse, and re-imports of the same image,
     * while the collector runs back to back with no grace. Every result image keeps all its layers, and reads.
     */
    @Test
    void executionsAndImportsKeepTheirLayers() throws Exception {
        dir = Files.createTempDirectory("gc-race");
        try (TestServer s = new TestServer(dir.resolve("data"), c -> c.withRuntime("runc", "ptrace").withLayerPoolBytes(1L << 30))) {
            byte[] rootfs = TestImages.busyboxRootfs();
            String base = s.importRootfs(s.tokenA, rootfs, "bb");
            Services svc = s.server.services();
            LayerGarbageCollector gc = new LayerGarbageCollector(svc.layers(), svc.layerIndex(), svc.leases(), Duration.ZERO);
            int chains = 3, steps = 5;
            List<String> results = Collections.synchronizedList(new ArrayList<>());
            try (Collecting collecting = new Collecting(gc);
                 ExecutorService pool = Executors.newFixedThreadPool(chains + 1)) {
                List<Future<?>> done = new ArrayList<>();
                for (int c = 0; c < chains; c++) {
                    int chain = c;
                    done.add(pool.submit(() -> {
                        String image = base;
                        for (int i = 0; i < steps; i++) {
                            String op = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + image + "\",\"command\":\"echo " + chain + "-" + i
                                    + " > /step-" + i + "\",\"shell\":true}");
                            JsonNode finished = s.await(s.tokenA, op, Duration.ofSeconds(60));
                            assertThat(finished.get("status").asText()).as(finished.toString()).isEqualTo("SUCCESS");
                            image = finished.get("result").get("image").asText();
                            results.add(image);
                        }
                        return null;
                    }));
                }
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 3; i++) assertThat(s.importRootfs(s.tokenA, rootfs, "bb")).isEqualTo(base);
                    return null;
                }));
                for (Future<?> f : done) f.get(BOUND.toSeconds(), TimeUnit.SECONDS);
                assertThat(collecting.passes.get()).as("GC passes").isPositive();
            }
            assertThat(results).hasSize(chains * steps);
            results.add(base);
            for (String uuid : results) {
                Image image = svc.images().get(s.accountA, uuid).orElseThrow();
                for (String layer : image.layers()) {
                    assertThat(svc.layers().exists(layer)).as("layer " + layer + " of image " + uuid).isTrue();
                }
            }
            String last = results.get(chains * steps - 1);
            assertThat(s.get(s.tokenA, "/v1/inspect/" + last + "/download?path=/step-" + (steps - 1)).text()).endsWith("-" + (steps - 1) + "\n");
        }
    }
}

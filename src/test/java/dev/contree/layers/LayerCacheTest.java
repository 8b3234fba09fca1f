package dev.contree.layers;

import dev.contree.TestS3;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.objects.LayerCache;
import dev.contree.objects.LayerTransfer;
import dev.contree.objects.ObjectStoreUrl;
import dev.contree.objects.S3ObjectStore;
import dev.contree.store.sqlite.SqliteStore;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The layer cache over two real pools and S3Proxy, one metadata store: many leases of one missing chain at once fetch
 * each layer once and all get it.
 */
class LayerCacheTest {
    static TestS3 s3;
    static S3ObjectStore objects;
    static LayerStore a, b;
    static SqliteStore db;
    static Path dbDir;

    @BeforeAll
    static void start() throws Exception {
        s3 = TestS3.start();
        objects = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()));
        a = TestStores.open(TestStores.freshRoot("cache-a"));
        b = TestStores.open(TestStores.freshRoot("cache-b"));
        dbDir = Files.createTempDirectory("cache-db");
        db = SqliteStore.open(dbDir.resolve("contree.db"));
    }

    @AfterAll
    static void stop() throws Exception {
        if (db != null) db.close();
        for (LayerStore s : new LayerStore[] {a, b}) {
            if (s == null) continue;
            Files.deleteIfExists(s.root().getParent().resolve("packs"));
            TestStores.destroy(s);
        }
        if (dbDir != null) try (var f = Files.list(dbDir)) {
            for (Path p : f.toList()) Files.delete(p);
            Files.delete(dbDir);
        }
        if (objects != null) objects.close();
        if (s3 != null) s3.close();
    }

    @Test
    void concurrentLeasesOfAMissingChainFetchEachLayerOnce() throws Exception {
        LayerIndex index = new LayerIndex(db.layers());
        LayerCache onA = new LayerCache(a, index, new LayerTransfer(objects, a, a.root().getParent().resolve("packs")), 1L << 30);
        LayerCache onB = new LayerCache(b, index, new LayerTransfer(objects, b, b.root().getParent().resolve("packs")), 1L << 30);
        LayerLeases leasesB = new LayerLeases(b, onB);
        onB.bind(leasesB);
        List<String> chain = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            try (LayerBuilder layer = a.create()) {
                TestStores.write(layer.diffDir().resolve("l" + i + "/data"), "layer " + i);
                String id = layer.commit();
                index.record(id, null, a.sizeOf(id));
                onA.publish(id);
                chain.addFirst(id);
            }
        }
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<LayerLeases.Lease>> leases = new ArrayList<>();
            for (int i = 0; i < 8; i++) leases.add(pool.submit(() -> leasesB.acquire(chain)));
            for (Future<LayerLeases.Lease> f : leases) f.get().close(); // none failed: no second fetch tripped over the first
        }
        for (int i = 0; i < 5; i++) {
            assertThat(Files.readString(b.diffDir(chain.get(4 - i)).resolve("l" + i + "/data"))).isEqualTo("layer " + i);
        }
        assertThat(onB.cachedBytes()).isEqualTo(onA.cachedBytes());
        onA.close();
        onB.close();
    }
}

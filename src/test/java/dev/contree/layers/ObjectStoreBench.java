package dev.contree.layers;

import dev.contree.TestImages;
import dev.contree.TestS3;
import dev.contree.layerformat.TarLayerWriter;
import dev.contree.objects.LayerTransfer;
import dev.contree.objects.ObjectKey;
import dev.contree.objects.ObjectStoreUrl;
import dev.contree.objects.S3ObjectStore;
import dev.contree.store.LayerRecords;

import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * What the object store costs a commit and a prepare (bench/objects.sh): two btrfs pools (nodes A and B) and a real
 * S3-protocol server (S3Proxy, filesystem backend, loopback, same disk). For the busybox image's layer and for a
 * 100 MiB file written by a "run": the local commit on A, then pack + upload (the object deleted first each round, so
 * content addressing does not skip it), then on B fetch + check + unpack, against a local prepare over the same chain.
 * Medians of N rounds (default 5). Needs root.
 */
public final class ObjectStoreBench {
    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        try (TestS3 s3 = TestS3.start(); S3ObjectStore objects = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()))) {
            LayerStore a = TestStores.open(TestStores.freshRoot("bench-a"));
            LayerStore b = TestStores.open(TestStores.freshRoot("bench-b"));
            try {
                LayerTransfer fromA = new LayerTransfer(objects, a, a.root().getParent().resolve("packs"));
                LayerTransfer intoB = new LayerTransfer(objects, b, b.root().getParent().resolve("packs"));
                byte[] busybox = TestImages.busyboxRootfs();
                List<Double> bbPackOnly = new ArrayList<>(), bigPackOnly = new ArrayList<>();
                List<Double> bbCommit = new ArrayList<>(), bbUpload = new ArrayList<>(), bbFetch = new ArrayList<>(), bbPrepare = new ArrayList<>();
                List<Double> bigCommit = new ArrayList<>(), bigUpload = new ArrayList<>(), bigFetch = new ArrayList<>(), bigPrepare = new ArrayList<>();
                long bbPack = 0, bigPack = 0, bbBytes = 0;
                for (int r = 0; r < rounds; r++) {
                    // busybox: the layer an import makes
                    String base;
                    long t0;
                    try (LayerBuilder lb = a.create()) {
                        new TarLayerWriter(lb.diffDir(), false).write(TarLayerWriter.decompressing(new ByteArrayInputStream(busybox)));
                        t0 = System.nanoTime();
                        base = lb.commit();
                        bbCommit.add(ms(t0));
                    }
                    bbBytes = a.sizeOf(base);
                    bbPackOnly.add(packOnly(a.diffDir(base)));
                    LayerRecords.Packed p = upload(fromA, objects, base, bbUpload);
                    bbPack = p.bytes();
                    t0 = System.nanoTime();
                    intoB.fetch(base, p);
                    bbFetch.add(ms(t0));
                    bbPrepare.add(prepare(b, List.of(base)));

                    // a run on it writes 100 MiB (random: the pack cannot shrink it)
                    WritableLayer w = a.prepare(List.of(base), 0);
                    byte[] big = new byte[100 << 20];
                    new Random(r).nextBytes(big);
                    Files.write(w.rootfs().resolve("big.bin"), big);
                    t0 = System.nanoTime();
                    String top = a.commit(w, List.of()).orElseThrow();
                    bigCommit.add(ms(t0));
                    bigPackOnly.add(packOnly(a.diffDir(top)));
                    LayerRecords.Packed q = upload(fromA, objects, top, bigUpload);
                    bigPack = q.bytes();
                    t0 = System.nanoTime();
                    intoB.fetch(top, q);
                    bigFetch.add(ms(t0));
                    bigPrepare.add(prepare(b, List.of(top, base)));
                    a.awaitBackgroundWork();
                    b.awaitBackgroundWork();
                }
                System.out.printf("object store bench, %d rounds, medians (ms); S3Proxy on loopback, same disk%n", rounds);
                row("busybox layer (" + bbBytes + " B data, pack " + bbPack + " B)", bbCommit, bbPackOnly, bbUpload, bbPrepare, bbFetch);
                row("100 MiB written (pack " + bigPack + " B)", bigCommit, bigPackOnly, bigUpload, bigPrepare, bigFetch);
            } finally {
                Files.deleteIfExists(a.root().getParent().resolve("packs"));
                Files.deleteIfExists(b.root().getParent().resolve("packs"));
                TestStores.destroy(a);
                TestStores.destroy(b);
            }
        }
    }

    private static LayerRecords.Packed upload(LayerTransfer t, S3ObjectStore objects, String id, List<Double> times) throws Exception {
        LayerRecords.Packed first = t.upload(id); // to learn the key
        objects.delete(ObjectKey.layer(first.sha256()));
        long t0 = System.nanoTime();
        LayerRecords.Packed p = t.upload(id);
        times.add(ms(t0));
        return p;
    }

    private static double prepare(LayerStore s, List<String> chain) throws Exception {
        long t0 = System.nanoTime();
        WritableLayer w = s.prepare(chain, 0);
        double ms = ms(t0);
        s.discard(w);
        return ms;
    }

    /** Tar + zstd + SHA-256 of the layer into nothing: what packing costs without the temp file and the upload. */
    private static double packOnly(Path diff) throws Exception {
        long t0 = System.nanoTime();
        var digest = java.security.MessageDigest.getInstance("SHA-256");
        try (var zstd = new com.github.luben.zstd.ZstdOutputStream(new java.security.DigestOutputStream(java.io.OutputStream.nullOutputStream(), digest), 3)) {
            dev.contree.layerformat.LayerPacker.pack(diff, zstd);
        }
        return ms(t0);
    }

    private static void row(String what, List<Double> commit, List<Double> packOnly, List<Double> upload, List<Double> prepare, List<Double> fetch) {
        double c = median(commit), k = median(packOnly), u = median(upload), p = median(prepare), f = median(fetch);
        System.out.printf("%s%n  local commit %.2f | pack+upload %.1f (%.0fx the commit; of which pack alone %.1f)%n"
                + "  local prepare %.2f | fetch+check+unpack %.1f (%.0fx the prepare)%n", what, c, u, u / c, k, p, f, f / p);
    }

    private static double ms(long t0) {
        return (System.nanoTime() - t0) / 1e6;
    }

    private static double median(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        s.sort(null);
        return s.get(s.size() / 2);
    }
}

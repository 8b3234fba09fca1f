package dev.contree.layers;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Benchmark of the snapshot store on a fresh loop-mounted btrfs image (run by bench/layers.sh as root).
 * Prints a table: prepare+commit vs number of layers, commit cost vs base size, read cost vs depth.
 */
public final class LayersBench {
    private static final List<String[]> rows = new ArrayList<>();
    private static LayerStore store;

    public static void main(String[] args) throws Exception {
        int chainLength = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
        int manyLayers = args.length > 1 ? Integer.parseInt(args[1]) : 5000;
        Path root = TestStores.freshRoot("bench");
        store = LayerStore.open(root, LayerStoreConfig.defaults()
                .withMaxMountDepth(Integer.getInteger("bench.maxDepth", LayerStoreConfig.DEFAULT_MAX_MOUNT_DEPTH)));
        long t0 = System.nanoTime();
        try {
            run(chainLength, manyLayers);
        } finally {
            TestStores.destroy(store);
        }
        System.out.printf(Locale.ROOT, "%n%-58s %14s %14s %8s%n", "measurement", "A", "B", "B/A");
        for (String[] r : rows) System.out.printf(Locale.ROOT, "%-58s %14s %14s %8s%n", (Object[]) r);
        System.out.printf(Locale.ROOT, "%nquotas enforced: %s; total bench time %.0f s%n", store.quotasEnforced(),
                (System.nanoTime() - t0) / 1e9);
    }

    private static void run(int chainLength, int manyLayers) throws IOException {
        log("building ~250 MB base layer");
        String empty = layer(List.of(), r -> Files.writeString(r.resolve("marker"), "m"));
        String base = layer(List.of(), r -> {
            byte[] buf = new byte[100_000];
            new Random(1).nextBytes(buf);
            for (int d = 0; d < 50; d++) {
                Path dir = Files.createDirectories(r.resolve("d" + d));
                for (int f = 0; f < 50; f++) Files.write(dir.resolve("f" + f), buf);
            }
            for (int i = 0; i < 40; i++) Files.writeString(r.resolve("top" + i), "t" + i);
        });
        Btrfs.syncfs(store.root());
        log("base size " + store.sizeOf(base) / 1_000_000 + " MB");

        // 1. prepare + commit with few and with many layers
        int existing = store.layerIds().size();
        while (existing < 10) { tiny(); existing++; }
        double[] few = prepareCommit(base, 60);
        log("creating " + manyLayers + " layers");
        while (existing < manyLayers) { tiny(); existing++; }
        store.awaitBackgroundWork(); // let the background read-only flags of the 5,000 new layers land first
        Btrfs.syncfs(store.root());
        double[] many = prepareCommit(base, 60);
        row("prepare (ms, median) 10 vs " + manyLayers + " layers", few[0], many[0]);
        row("commit 1 small file (ms, median) 10 vs " + manyLayers + " layers", few[1], many[1]);
        row("prepare+commit (ms, median) 10 vs " + manyLayers + " layers", few[0] + few[1], many[0] + many[1]);

        // 2. commit cost vs what was written, on a tiny base (A) and the ~250 MB base (B)
        commitCost("commit, 0 B written (ms)", empty, base, r -> { });
        commitCost("commit, 1 MiB written (ms)", empty, base, r -> writeBytes(r.resolve("one"), 1 << 20));
        commitCost("commit, 100 MiB written (ms)", empty, base, r -> writeBytes(r.resolve("hundred"), 100 << 20));
        commitCost("commit, 10,000 small files written (ms)", empty, base, r -> {
            Path d = Files.createDirectories(r.resolve("many"));
            for (int i = 0; i < 10_000; i++) Files.writeString(d.resolve("s" + i), "small file " + i);
        });

        // 3. read cost at depth 1 vs a 2,000-commit chain kept shallow by compaction
        log("building a chain of " + chainLength + " commits with compaction");
        List<String> chain = new ArrayList<>(List.of(base));
        long chainStart = System.nanoTime();
        long compactNanos = 0;
        int maxDepth = 0;
        long[] chainPhases = new long[3];
        for (int i = 0; i < chainLength; i++) {
            final int n = i;
            long p0 = System.nanoTime();
            WritableLayer w = store.prepare(chain, 0);
            long p1 = System.nanoTime();
            Path r = w.rootfs();
            Files.writeString(Files.createDirectories(r.resolve("chain")).resolve("c" + n), "c" + n);
            if (n % 3 == 2) Files.delete(r.resolve("chain/c" + (n - 2)));
            long p2 = System.nanoTime();
            String id = store.commit(w, List.of()).orElseThrow();
            long p3 = System.nanoTime();
            chainPhases[0] += p1 - p0;
            chainPhases[1] += p2 - p1;
            chainPhases[2] += p3 - p2;
            chain.addFirst(id);
            long c0 = System.nanoTime();
            chain = new ArrayList<>(store.compactIfNeeded(chain));
            compactNanos += System.nanoTime() - c0;
            maxDepth = Math.max(maxDepth, chain.size());
        }
        double chainMs = (System.nanoTime() - chainStart) / 1e6;
        rows.add(new String[] {"chain: " + chainLength + " commits, ms per commit incl. compaction", "",
                fmt(chainMs / chainLength), ""});
        rows.add(new String[] {"chain: prepare / write / commit (ms per commit)", "", String.format(Locale.ROOT, "%.2f / %.2f / %.2f",
                chainPhases[0] / 1e6 / chainLength, chainPhases[1] / 1e6 / chainLength, chainPhases[2] / 1e6 / chainLength), ""});
        rows.add(new String[] {"chain: compaction share of that (ms per commit)", "", fmt(compactNanos / 1e6 / chainLength), ""});
        rows.add(new String[] {"chain: max / final mount depth (lower dirs)", "", maxDepth + " / " + chain.size(), ""});

        WritableLayer shallow = store.prepare(List.of(base), 0);
        WritableLayer deep = store.prepare(chain, 0);
        try {
            readCost("stat of a base file (us)", shallow.rootfs(), deep.rootfs(), r -> Files.readAttributes(r.resolve("d17/f23"), BasicFileAttributes.class));
            readCost("listing / (us)", shallow.rootfs(), deep.rootfs(), r -> { try (var s = Files.list(r)) { s.count(); } });
            byte[] buf = new byte[4096];
            readCost("4 KiB read of a base file (us)", shallow.rootfs(), deep.rootfs(), r -> {
                try (InputStream in = Files.newInputStream(r.resolve("d31/f7"))) { in.readNBytes(buf, 0, 4096); }
            });
            readCost("stat of a missing file (us)", shallow.rootfs(), deep.rootfs(), r -> Files.exists(r.resolve("d3/nope")));
        } finally {
            store.discard(shallow);
            store.discard(deep);
        }
    }

    interface IOAction { void run(Path r) throws IOException; }

    private static String layer(List<String> lowers, IOAction a) throws IOException {
        WritableLayer w = store.prepare(lowers, 0);
        a.run(w.rootfs());
        return store.commit(w, List.of()).orElseThrow();
    }

    private static void tiny() throws IOException {
        LayerBuilder b = store.create();
        Files.writeString(b.diffDir().resolve("x"), "x");
        b.commit();
    }

    /** Median prepare and commit times (ms) of runs that write one small file on top of {@code base}. */
    private static double[] prepareCommit(String base, int runs) throws IOException {
        double[] prep = new double[runs], commit = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            WritableLayer w = store.prepare(List.of(base), 1L << 30);
            long t1 = System.nanoTime();
            Files.writeString(w.rootfs().resolve("out.txt"), "result " + i);
            long t2 = System.nanoTime();
            store.commit(w, List.of("proc", "sys", "dev", "tmp")).orElseThrow();
            long t3 = System.nanoTime();
            prep[i] = (t1 - t0) / 1e6;
            commit[i] = (t3 - t2) / 1e6;
        }
        return new double[] {median(prep), median(commit)};
    }

    private static void commitCost(String label, String smallBase, String bigBase, IOAction write) throws IOException {
        double a = commitOnce(smallBase, write), b = commitOnce(bigBase, write);
        double[] as = new double[3], bs = new double[3];
        for (int i = 0; i < 3; i++) { as[i] = commitOnce(smallBase, write); bs[i] = commitOnce(bigBase, write); }
        row(label + " tiny vs 250 MB base", Math.min(a, median(as)), Math.min(b, median(bs)));
    }

    private static double commitOnce(String base, IOAction write) throws IOException {
        WritableLayer w = store.prepare(List.of(base), 4L << 30);
        write.run(w.rootfs());
        long t0 = System.nanoTime();
        var id = store.commit(w, List.of());
        double ms = (System.nanoTime() - t0) / 1e6;
        if (id.isPresent()) store.remove(id.get());
        return ms;
    }

    private static void readCost(String label, Path shallow, Path deep, IOAction op) throws IOException {
        for (int i = 0; i < 2000; i++) { op.run(shallow); op.run(deep); } // warm up JIT and dcache
        int n = 20_000;
        double[] a = new double[5], b = new double[5];
        for (int round = 0; round < 5; round++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) op.run(shallow);
            long t1 = System.nanoTime();
            for (int i = 0; i < n; i++) op.run(deep);
            long t2 = System.nanoTime();
            a[round] = (t1 - t0) / 1e3 / n;
            b[round] = (t2 - t1) / 1e3 / n;
        }
        row(label + " depth 1 vs chain", median(a), median(b));
    }

    private static void writeBytes(Path p, long bytes) throws IOException {
        byte[] buf = new byte[1 << 20];
        new Random(bytes).nextBytes(buf);
        try (OutputStream out = Files.newOutputStream(p)) {
            for (long w = 0; w < bytes; w += buf.length) out.write(buf, 0, (int) Math.min(buf.length, bytes - w));
        }
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c[c.length / 2];
    }

    private static void row(String label, double a, double b) {
        rows.add(new String[] {label, fmt(a), fmt(b), String.format(Locale.ROOT, "%.2f", b / a)});
    }

    private static String fmt(double v) {
        return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : String.format(Locale.ROOT, "%.3f", v);
    }

    private static void log(String s) {
        System.out.println("[layers-bench] " + s);
    }
}

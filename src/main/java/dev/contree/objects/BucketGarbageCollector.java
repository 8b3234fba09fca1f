package dev.contree.objects;

import dev.contree.store.ObjectRecords;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Garbage collection of the whole object store: removes the objects nothing names any more (layer packs no image
 * uses, files no upload record has, leftovers of uploads that died before their record was written), and only after
 * they stayed unnamed for a grace period. Mark and sweep, with the marks in the metadata store
 * ({@link ObjectRecords}):
 *
 * <ol>
 * <li><b>mark</b>: the prefix is listed page by page ({@link #PAGE} keys); an object nothing names and not marked yet
 * is marked (now, on the database's clock); one that something names again loses its mark.</li>
 * <li><b>sweep</b>: marks older than the grace period, {@link #BATCH} at a time: under the lock on each key, the mark
 * is read again and the object checked to be still unnamed, the records of unused layers packed as it are removed,
 * and the batch is deleted from the bucket (one request) before that transaction commits.</li>
 * </ol>
 *
 * Why deduplication cannot lose an image: a node reusing an object (an upload it skips because the object exists, a
 * layer it reuses by digest, an image over layers nothing else names) goes through {@link ObjectGuard} and
 * {@link LayerCache#retain}: a marked object is unmarked under the same key lock, after the node made sure it is
 * there; an unmarked object is at least a grace period from its deletion, far longer than the reuse takes to record
 * what names it. One collection at a time cluster-wide ({@link ObjectRecords#exclusive}); a pass deletes at most
 * {@link #MAX_DELETES} objects, so its cost is bounded by the listing (a request per 1,000 objects) plus that.
 */
public final class BucketGarbageCollector {
    private static final Logger LOG = LoggerFactory.getLogger(BucketGarbageCollector.class);
    static final int PAGE = 1000;
    static final int BATCH = 200;
    static final int MAX_DELETES = 20_000;

    /** What one pass did; {@code ran} false: another collector was running, nothing was done. */
    public record Pass(boolean ran, long listed, long listedBytes, int foreign, int marked, int unmarked, int deleted,
                       long deletedBytes, long pending, long millis) {
        static Pass skipped() {
            return new Pass(false, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        }
    }

    private final ObjectStore objects;
    private final ObjectRecords marks;
    private final Duration grace;

    /** @param objects the store itself (not its {@link ObjectGuard}) */
    public BucketGarbageCollector(ObjectStore objects, ObjectRecords marks, Duration grace) {
        if (grace.isNegative() || grace.isZero()) throw new IllegalArgumentException("the grace period must be positive");
        this.objects = objects;
        this.marks = marks;
        this.grace = grace;
    }

    public Duration grace() {
        return grace;
    }

    /** One pass (mark, then sweep); returns at once, having done nothing, while another collector runs. */
    public Pass collect() throws IOException {
        Pass[] out = new Pass[1];
        IOException[] failed = new IOException[1];
        boolean ran = marks.exclusive(() -> {
            try {
                out[0] = pass();
            } catch (IOException e) {
                failed[0] = e;
            }
        });
        if (failed[0] != null) throw failed[0];
        if (!ran) {
            LOG.debug("object store garbage collection skipped: another node is collecting");
            return Pass.skipped();
        }
        Pass p = out[0];
        LOG.info("object store garbage collection: {} objects ({} bytes) listed, {} newly marked unreferenced, {} referenced again, "
                        + "{} deleted ({} bytes) after a grace of {} s, {} marked left, {} foreign names ignored, {} ms",
                p.listed(), p.listedBytes(), p.marked(), p.unmarked(), p.deleted(), p.deletedBytes(), grace.toMillis() / 1000.0, p.pending(),
                p.foreign(), p.millis());
        return p;
    }

    private Pass pass() throws IOException {
        long t0 = System.nanoTime();
        long listed = 0, listedBytes = 0;
        int foreign = 0, marked = 0, unmarked = 0;
        String next = null;
        do {
            ObjectStore.Listing page = objects.list(next, PAGE);
            List<ObjectRecords.Seen> seen = new ArrayList<>(page.objects().size());
            for (ObjectStore.Listed o : page.objects()) {
                listed++;
                listedBytes += o.bytes();
                if (o.key().isPresent()) seen.add(new ObjectRecords.Seen(o.key().get().markKey(), o.bytes()));
                else foreign++; // not a name this code writes: never touched
            }
            ObjectRecords.Marking m = marks.mark(seen);
            marked += m.marked();
            unmarked += m.unmarked();
            next = page.next();
        } while (next != null);

        long graceMicros = grace.toNanos() / 1000;
        int deleted = 0;
        long deletedBytes = 0;
        for (int round = 0; deleted < MAX_DELETES && round < MAX_DELETES / BATCH * 2; round++) {
            List<ObjectRecords.Mark> due = marks.due(graceMicros, BATCH);
            if (due.isEmpty()) break;
            List<ObjectRecords.Mark> gone = marks.sweep(due, graceMicros,
                    keys -> objects.deleteAll(keys.stream().map(ObjectKey::fromMarkKey).toList()));
            for (ObjectRecords.Mark g : gone) {
                deleted++;
                deletedBytes += g.bytes();
                LOG.debug("deleted unreferenced object {} ({} bytes, marked at {} µs)", g.key(), g.bytes(), g.markedAt());
            }
        }
        long pending = marks.markCount();
        return new Pass(true, listed, listedBytes, foreign, marked, unmarked, deleted, deletedBytes, pending, (System.nanoTime() - t0) / 1_000_000);
    }
}

package dev.contree.layers;

import java.util.List;

/**
 * Decides how many top layers of a chain to merge, LSM style (size-tiered).
 *
 * <p>Nothing happens while the chain is at most {@code maxDepth} deep. Beyond that, starting from the
 * top, layers are taken while the next layer is not bigger than everything taken so far, so runs of
 * similarly small layers merge and a big base (or an earlier, big merge result) is left alone; merged
 * layers grow geometrically and each byte is re-merged O(log n) times over a long chain. At least
 * {@code depth - maxDepth + 1} layers are always taken so the result is at most {@code maxDepth} deep.
 */
public record CompactionPolicy(int maxDepth) {
    /** Minimum weight of a layer, so that empty-ish layers still count. */
    private static final long MIN_WEIGHT = 4096;

    /** Number of top layers to merge into one (0 = leave the chain alone). */
    public int topLayersToMerge(List<Long> sizesTopFirst) {
        int n = sizesTopFirst.size();
        if (n <= maxDepth) return 0;
        int k = 0;
        long acc = 0;
        for (long s : sizesTopFirst) {
            long w = Math.max(MIN_WEIGHT, s);
            if (k >= 2 && w > acc) break;
            acc += w;
            k++;
        }
        return Math.min(n, Math.max(k, n - maxDepth + 1));
    }
}

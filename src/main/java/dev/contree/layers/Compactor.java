package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.DirStack;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Merges adjacent upper dirs (top first) into one upper dir that, stacked on the same layers below,
 * shows exactly what the originals showed. One top-down pass: for every name the topmost layer that has
 * it decides, so nothing that is overwritten later is ever copied. Regular files are reflinked.
 *
 * <p>Whiteouts and opaque markers: inside the range they are resolved (the hidden entries are simply not
 * copied). They are written to the result only when they may still hide something below the range:
 * always when the layers below are unknown ({@code below == null}), otherwise only when some layer
 * below has an entry at that path. Inside a directory that ends up opaque nothing below is visible, so
 * no whiteouts are needed there.
 *
 * <p>The layers are hostile trees: every directory is a {@link Dir} opened beneath its parent without
 * following symlinks, every entry is handled by name (bytes, whatever encoding the sandbox used).
 */
final class Compactor {
    private final List<Dir> range;
    private final List<Dir> below;
    /** Per range layer: inode of a hard-linked file → where its first copy went (path below out). */
    private final List<Map<Long, List<Dir.Name>>> links = new ArrayList<>();
    private long logicalBytes;

    /** The dirs stay owned by the caller. */
    Compactor(List<Dir> rangeTopFirst, List<Dir> belowTopFirst) {
        this.range = List.copyOf(rangeTopFirst);
        this.below = belowTopFirst == null ? null : List.copyOf(belowTopFirst);
        for (int i = 0; i < range.size(); i++) links.add(new HashMap<>());
    }

    /**
     * One merged directory on the walk's path.
     *
     * @param contrib indexes of range layers that have a (visible) directory here, top first
     * @param below   indexes of layers below that have a directory here (null: unknown, i.e. anything may be
     *                there; only tracked while whiteouts/opaque markers may still matter)
     * @param name    its name in the parent (null at the root); {@code top}, {@code st} and {@code markOpaque}
     *                say how its metadata is copied once its content is done
     */
    private record Frame(Dir.Name name, List<Integer> contrib, List<Integer> below, int top, Linux.Stat st,
                         boolean markOpaque, Iterator<Dir.Name> names) {
        boolean belowVisible() { return below == null || !below.isEmpty(); }
    }

    /**
     * Writes the merged tree into the existing empty directory {@code outName} in {@code outParent} and
     * copies the top layer's root metadata from {@code topName} in {@code topParent}; returns the apparent bytes.
     * Depth-first with an explicit stack and one {@link DirStack} per tree (no recursion, bounded descriptors
     * at any depth); deeper than {@link LayerStore#MAX_TREE_DEPTH}: {@link TreeTooDeepException}.
     */
    long run(Dir topParent, Dir.Name topName, Dir outParent, Dir.Name outName) throws IOException {
        List<DirStack> rangePaths = new ArrayList<>(), belowPaths = new ArrayList<>();
        try (Dir out = outParent.openDir(outName); DirStack outPath = new DirStack(out)) {
            for (Dir d : range) rangePaths.add(new DirStack(d));
            if (below != null) for (Dir d : below) belowPaths.add(new DirStack(d));
            List<Integer> all = new ArrayList<>(), allBelow = below == null ? null : new ArrayList<>();
            for (int i = 0; i < range.size(); i++) all.add(i);
            if (below != null) for (int i = 0; i < below.size(); i++) allBelow.add(i);
            Deque<Frame> frames = new ArrayDeque<>();
            frames.push(new Frame(null, all, allBelow, 0, null, false, names(rangePaths, all)));
            while (!frames.isEmpty()) {
                Frame f = frames.peek();
                if (f.names().hasNext()) {
                    Frame child = step(f, f.names().next(), rangePaths, belowPaths, outPath);
                    if (child != null) frames.push(child);
                    continue;
                }
                frames.pop();
                if (f.name() == null) continue; // the root: its metadata is copied below
                for (int i : f.contrib()) rangePaths.get(i).pop();
                if (f.below() != null) for (int i : f.below()) belowPaths.get(i).pop();
                outPath.pop();
                Dir outDir = outPath.top();
                UpperDir.copyMeta(rangePaths.get(f.top()).top(), f.name(), f.st(), outDir, f.name(), false);
                if (f.markOpaque()) UpperDir.setOpaque(outDir, f.name());
            }
        } finally {
            for (DirStack p : rangePaths) p.close();
            for (DirStack p : belowPaths) p.close();
        }
        UpperDir.copyMeta(topParent, topName, topParent.statOrNull(topName), outParent, outName, false);
        return logicalBytes;
    }

    /** Merges entry {@code name} of directory {@code f}; a directory is created and returned as a new frame to fill. */
    private Frame step(Frame f, Dir.Name name, List<DirStack> rangePaths, List<DirStack> belowPaths, DirStack outPath)
            throws IOException {
        List<Integer> contrib = f.contrib();
        int top = -1;
        Linux.Stat st = null;
        for (int k = 0; k < contrib.size(); k++) {
            st = rangePaths.get(contrib.get(k)).top().statOrNull(name);
            if (st != null) { top = k; break; }
        }
        if (st == null) return null; // removed meanwhile (cannot happen: layers are read-only)
        int layer = contrib.get(top);
        Dir src = rangePaths.get(layer).top();
        Dir out = outPath.top();
        if (st.isWhiteout()) {
            if (f.belowVisible() && existsBelow(belowPaths, f.below(), name)) out.mkwhiteout(name);
            return null;
        }
        if (!st.isDir()) {
            copyEntry(layer, src, name, st, outPath, out);
            return null;
        }
        TreeTooDeepException.check(outPath.depth() + 1);
        List<Integer> childContrib = new ArrayList<>(List.of(layer));
        boolean stops = UpperDir.isOpaque(src, name);
        for (int k = top + 1; k < contrib.size() && !stops; k++) {
            Dir lowerDir = rangePaths.get(contrib.get(k)).top();
            Linux.Stat lower = lowerDir.statOrNull(name);
            if (lower == null) continue;
            if (!lower.isDir()) { stops = true; break; } // whiteout or non-dir hides everything below
            childContrib.add(contrib.get(k));
            if (UpperDir.isOpaque(lowerDir, name)) stops = true;
        }
        boolean markOpaque = f.belowVisible() && stops && existsBelow(belowPaths, f.below(), name);
        List<Integer> childBelow;
        if (f.belowVisible() && !stops) childBelow = belowDirsOf(belowPaths, f.below(), name);
        else childBelow = List.of(); // nothing below shows through: no whiteouts needed inside
        out.mkdir(name, 0700);
        outPath.push(name);
        for (int i : childContrib) rangePaths.get(i).push(name);
        if (childBelow != null) for (int i : childBelow) belowPaths.get(i).push(name);
        return new Frame(name, childContrib, childBelow, layer, st, markOpaque, names(rangePaths, childContrib));
    }

    /** The names in the directories at the top of the given paths, sorted by their bytes. */
    private static Iterator<Dir.Name> names(List<DirStack> paths, List<Integer> which) throws IOException {
        TreeSet<Dir.Name> names = new TreeSet<>();
        for (int i : which) names.addAll(paths.get(i).top().list());
        return names.iterator();
    }

    private static boolean existsBelow(List<DirStack> belowPaths, List<Integer> which, Dir.Name name) throws IOException {
        if (which == null) return true;
        for (int i : which) if (belowPaths.get(i).top().statOrNull(name) != null) return true;
        return false;
    }

    /** The layers below with a directory {@code name} here; null (unknown) stays null. */
    private static List<Integer> belowDirsOf(List<DirStack> belowPaths, List<Integer> which, Dir.Name name) throws IOException {
        if (which == null) return null;
        List<Integer> out = new ArrayList<>();
        for (int i : which) {
            Linux.Stat st = belowPaths.get(i).top().statOrNull(name);
            if (st != null && st.isDir()) out.add(i);
        }
        return out;
    }

    private void copyEntry(int layer, Dir src, Dir.Name name, Linux.Stat st, DirStack outPath, Dir out) throws IOException {
        if (st.nlink() > 1) {
            List<Dir.Name> first = links.get(layer).get(st.ino());
            if (first != null) {
                try (Dir firstParent = ScratchPaths.openOrNull(outPath.root(), first.subList(0, first.size() - 1))) {
                    out.link(firstParent, first.getLast(), name);
                }
                return;
            }
            List<Dir.Name> at = new ArrayList<>(outPath.names());
            at.add(name);
            links.get(layer).put(st.ino(), at);
        }
        UpperDir.copyNonDir(src, name, st, out, name);
        if (st.isRegular()) logicalBytes += st.size();
    }
}

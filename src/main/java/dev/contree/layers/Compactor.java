package dev.contree.layers;

import dev.contree.linux.Linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
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
 */
final class Compactor {
    private final List<Path> range;
    private final List<Path> below;
    private final List<Map<Long, Path>> links = new ArrayList<>();
    private long logicalBytes;

    Compactor(List<Path> rangeTopFirst, List<Path> belowTopFirst) {
        this.range = List.copyOf(rangeTopFirst);
        this.below = belowTopFirst == null ? null : List.copyOf(belowTopFirst);
        for (int i = 0; i < range.size(); i++) links.add(new HashMap<>());
    }

    /** Writes the merged tree into the existing empty directory {@code out}; returns the apparent bytes. */
    long run(Path out) throws IOException {
        List<Integer> all = new ArrayList<>();
        for (int i = 0; i < range.size(); i++) all.add(i);
        mergeDir("", all, true, out);
        UpperDir.copyMeta(range.get(0), Linux.lstat(range.get(0)), out, false);
        return logicalBytes;
    }

    private boolean existsBelow(String rel) throws IOException {
        if (below == null) return true;
        for (Path b : below) if (Linux.lstatOrNull(b.resolve(rel)) != null) return true;
        return false;
    }

    /** @param contrib indexes of range layers that have a (visible) directory at rel, top first */
    private void mergeDir(String rel, List<Integer> contrib, boolean belowVisible, Path out) throws IOException {
        TreeSet<String> names = new TreeSet<>();
        for (int i : contrib) names.addAll(UpperDir.list(range.get(i).resolve(rel)));
        for (String name : names) {
            String childRel = rel.isEmpty() ? name : rel + "/" + name;
            int top = -1;
            Linux.Stat st = null;
            for (int i : contrib) {
                st = Linux.lstatOrNull(range.get(i).resolve(childRel));
                if (st != null) { top = i; break; }
            }
            Path src = range.get(top).resolve(childRel);
            Path dst = out.resolve(name);
            if (st.isWhiteout()) {
                if (belowVisible && existsBelow(childRel)) Linux.mkwhiteout(dst);
            } else if (!st.isDir()) {
                copyEntry(top, src, st, dst);
            } else {
                List<Integer> childContrib = new ArrayList<>();
                childContrib.add(top);
                boolean stops = UpperDir.isOpaque(src);
                int pos = contrib.indexOf(top);
                for (int k = pos + 1; k < contrib.size() && !stops; k++) {
                    int i = contrib.get(k);
                    Linux.Stat lower = Linux.lstatOrNull(range.get(i).resolve(childRel));
                    if (lower == null) continue;
                    if (!lower.isDir()) { stops = true; break; } // whiteout or non-dir hides everything below
                    childContrib.add(i);
                    if (UpperDir.isOpaque(range.get(i).resolve(childRel))) stops = true;
                }
                Files.createDirectory(dst);
                boolean childBelowVisible = belowVisible && !stops;
                mergeDir(childRel, childContrib, childBelowVisible, dst);
                UpperDir.copyMeta(src, st, dst, false);
                if (belowVisible && stops && existsBelow(childRel)) UpperDir.setOpaque(dst);
            }
        }
    }

    private void copyEntry(int layer, Path src, Linux.Stat st, Path dst) throws IOException {
        if (st.nlink() > 1) {
            Path first = links.get(layer).get(st.ino());
            if (first != null) {
                Files.createLink(dst, first);
                return;
            }
            links.get(layer).put(st.ino(), dst);
        }
        UpperDir.copyNonDir(src, st, dst);
        if (st.isRegular()) logicalBytes += st.size();
    }
}

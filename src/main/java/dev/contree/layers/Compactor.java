package dev.contree.layers;

import dev.contree.linux.Dir;
import dev.contree.linux.Linux;

import java.io.IOException;
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
     * Writes the merged tree into the existing empty directory {@code outName} in {@code outParent} and
     * copies the top layer's root metadata from {@code topName} in {@code topParent}; returns the apparent bytes.
     */
    long run(Dir topParent, Dir.Name topName, Dir outParent, Dir.Name outName) throws IOException {
        List<Integer> all = new ArrayList<>();
        List<Dir> dirs = new ArrayList<>();
        for (int i = 0; i < range.size(); i++) {
            all.add(i);
            dirs.add(range.get(i));
        }
        try (Dir out = outParent.openDir(outName)) {
            mergeDir(new ArrayList<>(), all, dirs, below, out, out);
        }
        UpperDir.copyMeta(topParent, topName, topParent.statOrNull(topName), outParent, outName, false);
        return logicalBytes;
    }

    /**
     * @param contrib indexes of range layers that have a (visible) directory here, top first
     * @param dirs    those directories, parallel to contrib
     * @param belowDirs directories at this path in the layers below (null: unknown, i.e. anything may be there;
     *                  only computed while whiteouts/opaque markers may still matter)
     */
    private void mergeDir(List<Dir.Name> rel, List<Integer> contrib, List<Dir> dirs, List<Dir> belowDirs,
                          Dir outRoot, Dir out) throws IOException {
        boolean belowVisible = belowDirs == null || !belowDirs.isEmpty();
        TreeSet<Dir.Name> names = new TreeSet<>();
        for (Dir d : dirs) names.addAll(d.list());
        for (Dir.Name name : names) {
            int top = -1;
            Linux.Stat st = null;
            for (int k = 0; k < contrib.size(); k++) {
                st = dirs.get(k).statOrNull(name);
                if (st != null) { top = k; break; }
            }
            if (st == null) continue; // removed meanwhile (cannot happen: layers are read-only)
            Dir src = dirs.get(top);
            if (st.isWhiteout()) {
                if (belowVisible && existsBelow(belowDirs, name)) out.mkwhiteout(name);
            } else if (!st.isDir()) {
                List<Dir.Name> childRel = child(rel, name);
                copyEntry(contrib.get(top), src, name, st, outRoot, out, childRel);
            } else {
                List<Integer> childContrib = new ArrayList<>();
                List<Dir> childDirs = new ArrayList<>();
                List<Dir> childBelow = null;
                try {
                    childContrib.add(contrib.get(top));
                    childDirs.add(src.openDir(name));
                    boolean stops = UpperDir.isOpaque(src, name);
                    for (int k = top + 1; k < contrib.size() && !stops; k++) {
                        Linux.Stat lower = dirs.get(k).statOrNull(name);
                        if (lower == null) continue;
                        if (!lower.isDir()) { stops = true; break; } // whiteout or non-dir hides everything below
                        childContrib.add(contrib.get(k));
                        childDirs.add(dirs.get(k).openDir(name));
                        if (UpperDir.isOpaque(dirs.get(k), name)) stops = true;
                    }
                    boolean markOpaque = belowVisible && stops && existsBelow(belowDirs, name);
                    if (belowVisible && !stops) childBelow = belowDirsOf(belowDirs, name);
                    else childBelow = List.of(); // nothing below shows through: no whiteouts needed inside
                    out.mkdir(name, 0700);
                    try (Dir childOut = out.openDir(name)) {
                        mergeDir(child(rel, name), childContrib, childDirs, childBelow, outRoot, childOut);
                    }
                    UpperDir.copyMeta(src, name, st, out, name, false);
                    if (markOpaque) UpperDir.setOpaque(out, name);
                } finally {
                    for (Dir d : childDirs) d.close();
                    if (childBelow != null && childBelow != belowDirs) for (Dir d : childBelow) d.close();
                }
            }
        }
    }

    private static boolean existsBelow(List<Dir> belowDirs, Dir.Name name) throws IOException {
        if (belowDirs == null) return true;
        for (Dir b : belowDirs) if (b.statOrNull(name) != null) return true;
        return false;
    }

    /** The directories named {@code name} in the layers below; null (unknown) stays null. */
    private static List<Dir> belowDirsOf(List<Dir> belowDirs, Dir.Name name) throws IOException {
        if (belowDirs == null) return null;
        List<Dir> out = new ArrayList<>();
        for (Dir b : belowDirs) {
            Linux.Stat st = b.statOrNull(name);
            if (st != null && st.isDir()) out.add(b.openDir(name));
        }
        return out;
    }

    private static List<Dir.Name> child(List<Dir.Name> rel, Dir.Name name) {
        List<Dir.Name> c = new ArrayList<>(rel.size() + 1);
        c.addAll(rel);
        c.add(name);
        return c;
    }

    private void copyEntry(int layer, Dir src, Dir.Name name, Linux.Stat st, Dir outRoot, Dir out, List<Dir.Name> childRel)
            throws IOException {
        if (st.nlink() > 1) {
            List<Dir.Name> first = links.get(layer).get(st.ino());
            if (first != null) {
                try (Dir firstParent = ScratchPaths.openOrNull(outRoot, first.subList(0, first.size() - 1))) {
                    out.link(firstParent, first.getLast(), name);
                }
                return;
            }
            links.get(layer).put(st.ino(), childRel);
        }
        UpperDir.copyNonDir(src, name, st, out, name);
        if (st.isRegular()) logicalBytes += st.size();
    }
}

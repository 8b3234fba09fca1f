package dev.contree.layers;

import java.io.IOException;

/**
 * A layer's directory tree is deeper than {@link LayerStore#MAX_TREE_DEPTH} levels: it is not committed (a run
 * fails with nothing kept, an import fails). The bound keeps every walk of a layer (size, compaction) linear in
 * time and bounded in memory and descriptors; the message is meant for clients.
 */
public final class TreeTooDeepException extends IOException {
    TreeTooDeepException() {
        super("directory tree deeper than " + LayerStore.MAX_TREE_DEPTH + " levels (the server's limit for a layer)");
    }

    static void check(int depth) throws TreeTooDeepException {
        if (depth > LayerStore.MAX_TREE_DEPTH) throw new TreeTooDeepException();
    }
}

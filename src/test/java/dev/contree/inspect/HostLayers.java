package dev.contree.inspect;

import dev.contree.TestServer;
import dev.contree.images.Image;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Test helper: writes into the top layer of an imported image on the host, for trees no tar import would
 * produce quickly (16 GiB sparse files, 30k entries, names that are not UTF-8). The layer is a read-only btrfs
 * subvolume: made writable for the edit, read-only again after.
 */
final class HostLayers {
    private HostLayers() {}

    @FunctionalInterface
    interface Edit {
        void apply(Path diffDir) throws IOException;
    }

    static Image image(TestServer s, String uuid) {
        String accountB = s.server.services().tokens().verify(s.tokenB).orElseThrow().accountId();
        for (String account : List.of(s.accountA, accountB))
            for (var img : s.server.services().images().get(account, uuid).stream().toList()) return img;
        throw new AssertionError("no image " + uuid);
    }

    static Path topLayer(TestServer s, String uuid) {
        return s.server.services().layers().diffDir(image(s, uuid).layers().getFirst());
    }

    static void edit(TestServer s, String token, String uuid, Edit edit) throws Exception {
        s.server.services().layers().awaitBackgroundWork(); // sealing (read-only) happens in the background
        Path diff = topLayer(s, uuid);
        btrfs("property", "set", "-ts", diff.getParent().toString(), "ro", "false");
        try {
            edit.apply(diff);
        } finally {
            btrfs("property", "set", "-ts", diff.getParent().toString(), "ro", "true");
        }
    }

    private static void btrfs(String... args) throws Exception {
        String[] cmd = new String[args.length + 1];
        cmd[0] = "btrfs";
        System.arraycopy(args, 0, cmd, 1, args.length);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) throw new AssertionError(String.join(" ", cmd) + ": " + out);
    }
}

package dev.contree.layers;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.contree.layers.TestStores.write;
import static org.assertj.core.api.Assertions.assertThat;

class RecoveryTest {
    LayerStore store;

    @AfterEach
    void destroy() throws IOException {
        TestStores.destroy(store);
    }

    @Test
    void reopenAfterCrashCleansUpAndRestartRemountsTheImage() throws IOException {
        Path root = TestStores.freshRoot("recovery");
        LayerStore crashed = TestStores.open(root);
        WritableLayer base = crashed.prepare(List.of(), 0);
        write(base.rootfs().resolve("kept"), "kept");
        String committed = crashed.commit(base, List.of()).orElseThrow();
        crashed.awaitBackgroundWork();
        Btrfs.setReadOnly(crashed.diffDir(committed).getParent(), false); // as if the crash beat the sealer
        WritableLayer running = crashed.prepare(List.of(committed), 1 << 20);   // mounted, uncommitted
        write(running.rootfs().resolve("lost"), "lost");
        LayerBuilder importing = crashed.create();                             // unmounted, uncommitted
        write(importing.diffDir().resolve("half"), "half");
        // "crash": the process dies without close(); the kernel keeps the image and overlay mounted

        store = TestStores.open(root);
        assertThat(Mounts.mountsUnder(root)).isEmpty();
        assertThat(store.layerIds()).containsExactly(committed);
        assertThat(UpperDir.list(root.resolve("layers"))).containsExactly(committed);
        assertThat(UpperDir.list(root.resolve("mnt"))).isEmpty();
        assertThat(Files.readString(store.diffDir(committed).resolve("kept"))).isEqualTo("kept");
        assertThat(Btrfs.isReadOnly(store.diffDir(committed).getParent())).isTrue();

        // restart: the image is unmounted; opening again loop-mounts the same image
        store.close();
        if (Mounts.isMountPoint(root)) Mounts.unmount(root);
        assertThat(Btrfs.isBtrfs(root)).isFalse();
        store = TestStores.open(root);
        assertThat(Btrfs.isBtrfs(root)).isTrue();
        assertThat(store.layerIds()).containsExactly(committed);
        assertThat(store.quotasEnforced()).isTrue();
        WritableLayer w = store.prepare(List.of(committed), 0);
        assertThat(Files.readString(w.rootfs().resolve("kept"))).isEqualTo("kept");
        store.discard(w);
    }
}

package dev.contree.sandbox.vm;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The initramfs writer and the module dependency reader, without a VM. */
class GuestAssetsTest {
    @TempDir Path tmp;

    @Test
    void cpioIsWhatTheCpioToolReads() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/cpio")), "cpio missing");
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (Cpio c = new Cpio(b)) {
            c.dir("dev", 0755);
            c.charDevice("dev/console", 0600, 5, 1);
            c.file("init", 0500, "#!x\n".getBytes());
            c.file("m/odd", 0400, "12345".getBytes()); // a size that needs padding
        }
        assertThat(b.size() % 4).isZero();
        Path img = tmp.resolve("i.cpio");
        Files.write(img, b.toByteArray());
        Process p = new ProcessBuilder("cpio", "-itv", "--quiet").redirectInput(img.toFile()).redirectErrorStream(true).start();
        String list = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).isZero();
        assertThat(list).contains("dev/console").contains("m/odd").contains("init");
        assertThat(list.lines().filter(l -> l.endsWith("dev/console")).findFirst().orElseThrow()).startsWith("crw-------").contains("5,");
        assertThat(list.lines().filter(l -> l.endsWith(" init")).findFirst().orElseThrow()).startsWith("-r-x------");
    }

    @Test
    void dependsComesFromModinfo() {
        byte[] ko = "\0\u007fELF junk\0license=GPL\0depends=virtio,virtio_ring\0name=virtio_mmio\0".getBytes(StandardCharsets.US_ASCII);
        assertThat(GuestAssets.depends(ko)).containsExactly("virtio", "virtio_ring");
        assertThat(GuestAssets.depends("\0depends=\0name=x\0".getBytes(StandardCharsets.US_ASCII))).isEmpty();
        assertThat(GuestAssets.depends("no modinfo".getBytes(StandardCharsets.US_ASCII))).isEmpty();
    }

    @Test
    void modulesComeDependenciesFirst() throws Exception {
        Path k = Files.createDirectories(tmp.resolve("mods/kernel/drivers"));
        module(k, "virtio_ring", "");
        module(k, "virtio", "virtio_ring");
        module(k, "virtio_mmio", "virtio,virtio_ring");
        module(k, "virtio_console", "virtio,virtio_ring");
        module(k, "fuse", "");
        module(k, "virtiofs", "fuse,virtio,virtio_ring");
        module(k, "failover", ""); // virtio_net's chain, as in Debian's 6.1 cloud kernel
        module(k, "net_failover", "failover");
        module(k, "virtio_net", "virtio_ring,virtio,net_failover");
        List<String> names = GuestAssets.resolve(tmp.resolve("mods")).stream().map(m -> m.name()).toList();
        assertThat(names).containsExactly("virtio_ring", "virtio", "virtio_mmio", "virtio_console", "fuse", "virtiofs",
                "failover", "net_failover", "virtio_net");
    }

    private static void module(Path dir, String name, String deps) throws Exception {
        Files.write(dir.resolve(name + ".ko"), ("\0depends=" + deps + "\0name=" + name + "\0").getBytes(StandardCharsets.US_ASCII));
    }
}

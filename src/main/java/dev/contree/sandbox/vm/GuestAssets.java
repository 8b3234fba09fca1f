package dev.contree.sandbox.vm;

import dev.contree.sandbox.RunFiles;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The guest's kernel and initramfs, cached in the server's state directory.
 *
 * <p>The kernel is Debian's {@code linux-image-cloud-amd64} (6.1, made for VMs: virtio as modules, no hardware
 * drivers), fetched with {@code apt-get download} and unpacked with {@code dpkg-deb -x} into
 * {@code cache/kernel/<package>/}: never installed on the host. The initramfs is built here at first use: a newc
 * cpio of contree-vmboot as {@code /init}, contree-init, {@code /dev/console} and the modules the guest needs
 * (virtio_mmio, virtio_console, virtiofs and what their {@code depends=} name, dependencies first; virtio_net and its
 * chain in a second list that only a networked guest loads). Its name is
 * the hash of everything in it, so a second start, or a second server on the same data dir, reuses it.
 *
 * @param kernel    the bzImage QEMU loads with {@code -kernel}
 * @param initramfs the cpio QEMU loads with {@code -initrd}
 * @param release   the kernel release (what {@code uname -r} says in the guest)
 */
public record GuestAssets(Path kernel, Path initramfs, String release) {
    private static final Logger log = LoggerFactory.getLogger(GuestAssets.class);
    public static final String KERNEL_PACKAGE = "linux-image-cloud-amd64";
    /** What the guest loads; everything they depend on comes along. */
    static final List<String> ROOT_MODULES = List.of("virtio_mmio", "virtio_console", "virtiofs");
    /** What a networked guest loads on top (listed in {@code m/order-net}; a guest without network never loads them). */
    static final List<String> NET_MODULES = List.of("virtio_net");

    /** Finds or makes both in {@code cache}; {@code vmboot} and {@code init} are the two static guest binaries. */
    public static synchronized GuestAssets prepare(Path cache, byte[] vmboot, byte[] init) throws IOException {
        Files.createDirectories(cache);
        Path kdir = kernelDir(cache);
        Path boot = kdir.resolve("boot");
        Path vmlinuz;
        try (Stream<Path> s = Files.list(boot)) {
            vmlinuz = s.filter(p -> p.getFileName().toString().startsWith("vmlinuz-")).findFirst()
                    .orElseThrow(() -> new IOException("no vmlinuz in " + boot));
        }
        String release = vmlinuz.getFileName().toString().substring("vmlinuz-".length());
        Path modRoot = kdir.resolve("lib/modules").resolve(release);
        List<Module> modules = resolve(modRoot);
        int base = resolve(modRoot, ROOT_MODULES).size(); // the first ones: resolve() lists the roots' chains first

        byte[] order = String.join("\n", modules.subList(0, base).stream().map(m -> m.name + ".ko").toList()).concat("\n")
                .getBytes(StandardCharsets.UTF_8);
        byte[] orderNet = String.join("\n", modules.subList(base, modules.size()).stream().map(m -> m.name + ".ko").toList())
                .concat("\n").getBytes(StandardCharsets.UTF_8);
        MessageDigest md = sha256();
        md.update(release.getBytes(StandardCharsets.UTF_8));
        md.update(order);
        md.update(orderNet);
        for (Module m : modules) md.update(m.bytes);
        md.update(vmboot);
        md.update(init);
        String hash = HexFormat.of().formatHex(md.digest()).substring(0, 16);
        Path img = cache.resolve("initramfs-" + hash + ".cpio");
        if (!Files.isRegularFile(img, LinkOption.NOFOLLOW_LINKS)) {
            Path tmp = Files.createTempFile(cache, ".initramfs", ".tmp");
            try (OutputStream os = Files.newOutputStream(tmp); Cpio c = new Cpio(os)) {
                c.dir("dev", 0755);
                c.charDevice("dev/console", 0600, 5, 1); // the kernel opens it for init's fds 0-2
                c.dir("proc", 0755);
                c.dir("sys", 0755);
                c.dir("newroot", 0755);
                c.dir("m", 0700);
                for (Module m : modules) c.file("m/" + m.name + ".ko", 0400, m.bytes);
                c.file("m/order", 0400, order);
                c.file("m/order-net", 0400, orderNet);
                c.file("contree-init", 0500, init);
                c.file("init", 0500, vmboot);
            }
            // Readable by QEMU's unprivileged uid through the fd the server opens for it (no path to it is).
            Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            Files.move(tmp, img, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            log.info("built the microVM initramfs {} ({} modules: {})", img.getFileName(), modules.size(),
                    modules.stream().map(m -> m.name).toList());
        }
        if (!Files.getPosixFilePermissions(img).contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ))
            Files.setPosixFilePermissions(img, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        return new GuestAssets(vmlinuz, img, release);
    }

    /** cache/kernel/&lt;package&gt;, downloaded and unpacked the first time. */
    private static Path kernelDir(Path cache) throws IOException {
        Path kernels = cache.resolve("kernel");
        Files.createDirectories(kernels);
        try (Stream<Path> s = Files.list(kernels)) {
            var done = s.filter(p -> Files.exists(p.resolve(".complete"))).sorted(Comparator.reverseOrder()).findFirst();
            if (done.isPresent()) return done.get();
        }
        String pkg = versionedPackage();
        Path tmp = Files.createTempDirectory(kernels, ".fetch");
        try {
            log.info("fetching the microVM guest kernel {} with apt-get download (not installed on the host)", pkg);
            run(tmp, List.of("apt-get", "download", "-q", pkg), Duration.ofMinutes(10));
            Path deb;
            try (Stream<Path> s = Files.list(tmp)) {
                deb = s.filter(p -> p.getFileName().toString().endsWith(".deb")).findFirst()
                        .orElseThrow(() -> new IOException("apt-get download left no .deb"));
            }
            Path x = tmp.resolve("x");
            run(tmp, List.of("dpkg-deb", "-x", deb.toString(), x.toString()), Duration.ofMinutes(5));
            Files.writeString(x.resolve(".complete"), pkg + "\n");
            Path target = kernels.resolve(pkg);
            Files.move(x, target, StandardCopyOption.ATOMIC_MOVE);
            return target;
        } finally {
            deleteTree(tmp);
        }
    }

    private record Duration(long seconds) {
        static Duration ofMinutes(long m) { return new Duration(m * 60); }
    }

    /** The meta package's versioned dependency, e.g. linux-image-6.1.0-57-cloud-amd64. */
    private static String versionedPackage() throws IOException {
        String out = run(Path.of("/"), List.of("apt-cache", "depends", "--no-recommends", "--no-suggests", KERNEL_PACKAGE),
                Duration.ofMinutes(1));
        for (String line : out.split("\n")) {
            String l = line.strip();
            if (l.startsWith("Depends: linux-image-")) {
                String p = l.substring("Depends: ".length()).strip();
                if (p.matches("[a-z0-9.+-]+")) return p;
            }
        }
        throw new IOException("apt-cache does not know " + KERNEL_PACKAGE + " (is a Debian 12 archive configured?): " + out.strip());
    }

    private static String run(Path dir, List<String> argv, Duration timeout) throws IOException {
        Process p = new ProcessBuilder(argv).directory(dir.toFile()).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Thread t = Thread.ofVirtual().start(() -> {
            try (var in = p.getInputStream()) {
                byte[] b = new byte[8192];
                int n;
                while ((n = in.read(b)) > 0) if (buf.size() < 65536) buf.write(b, 0, n);
            } catch (IOException ignored) {
            }
        });
        try {
            if (!p.waitFor(timeout.seconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException(argv.getFirst() + " took longer than " + timeout.seconds + " s");
            }
            t.join(5000);
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        if (p.exitValue() != 0) throw new IOException(String.join(" ", argv) + " failed (exit " + p.exitValue() + "): " + out.strip());
        return out;
    }

    record Module(String name, byte[] bytes) {}

    /** ROOT_MODULES and their dependencies, then NET_MODULES' that are not among them, each after what it depends on. */
    static List<Module> resolve(Path modRoot) throws IOException {
        List<String> all = new ArrayList<>(ROOT_MODULES);
        all.addAll(NET_MODULES);
        return resolve(modRoot, all);
    }

    static List<Module> resolve(Path modRoot, List<String> roots) throws IOException {
        Map<String, Path> byName = new HashMap<>();
        try (Stream<Path> s = Files.walk(modRoot.resolve("kernel"))) {
            s.filter(p -> p.getFileName().toString().endsWith(".ko")).forEach(p -> {
                String f = p.getFileName().toString();
                byName.putIfAbsent(f.substring(0, f.length() - 3).replace('-', '_'), p);
            });
        }
        Set<String> done = new LinkedHashSet<>();
        Map<String, byte[]> bytes = new HashMap<>();
        for (String m : roots) visit(m, byName, bytes, done, new LinkedHashSet<>());
        List<Module> out = new ArrayList<>();
        for (String m : done) out.add(new Module(m, bytes.get(m)));
        return out;
    }

    private static void visit(String name, Map<String, Path> byName, Map<String, byte[]> bytes, Set<String> done,
                              Set<String> path) throws IOException {
        if (done.contains(name)) return;
        if (!path.add(name)) throw new IOException("module dependency cycle at " + name);
        Path p = byName.get(name);
        if (p == null) throw new IOException("kernel module " + name + " not found (built in? then drop it from the list)");
        byte[] b = Files.readAllBytes(p);
        for (String dep : depends(b)) visit(dep, byName, bytes, done, path);
        bytes.put(name, b);
        done.add(name);
    }

    /** The {@code depends=} entry of a module's .modinfo section (NUL-separated key=value strings). */
    static List<String> depends(byte[] ko) {
        byte[] key = "\0depends=".getBytes(StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + key.length < ko.length; i++) {
            for (int j = 0; j < key.length; j++) if (ko[i + j] != key[j]) continue outer;
            int start = i + key.length, end = start;
            while (end < ko.length && ko[end] != 0) end++;
            String v = new String(ko, start, end - start, StandardCharsets.US_ASCII);
            return v.isEmpty() ? List.of() : List.of(v.split(","));
        }
        return List.of();
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    private static void deleteTree(Path p) { RunFiles.deleteTree(p, log); }
}

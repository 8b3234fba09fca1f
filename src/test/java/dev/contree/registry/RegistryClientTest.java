package dev.contree.registry;

import dev.contree.cancel.CancelToken;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.GZIPInputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Anonymous pulls from a real docker-registry with images built by {@link OciLayoutBuilder} and pushed by skopeo. */
class RegistryClientTest {
    @TempDir
    static Path tmp;
    static TestRegistry reg;
    static RegistryClient client;
    static OciLayoutBuilder.Image single;
    static OciLayoutBuilder.Index multi;
    static OciLayoutBuilder.Image corrupt;
    static OciLayoutBuilder.Image docker;

    @BeforeAll
    static void setUp() throws Exception {
        reg = TestRegistry.start(tmp);
        Path layout = tmp.resolve("layout");
        single = new OciLayoutBuilder()
            .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
            .layer(Compression.ZSTD, new OciLayoutBuilder.Tar().dir("work").file("work/hello.txt", "hello zstd\n"))
            .layer(Compression.NONE, new OciLayoutBuilder.Tar().file("etc/motd", "plain\n").whiteout("tmp/gone"))
            .env("PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi=there").workingDir("/work").user("1000:1000")
            .entrypoint("/bin/sh", "-c").cmd("echo hello")
            .writeLayout(layout, "single");
        reg.push(layout, "single", "test/busybox", "v1", false);

        multi = OciLayoutBuilder.writeIndex(layout, "multi", List.of(
            new OciLayoutBuilder().platform("linux", "arm64", "v8")
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("arch", "arm64\n")).env("ARCH=arm64"),
            new OciLayoutBuilder().platform("linux", "amd64", "v3")
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("arch", "amd64-v3\n")).env("ARCH=amd64v3"),
            new OciLayoutBuilder().platform("linux", "amd64", null)
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("arch", "amd64\n")).env("ARCH=amd64")));
        reg.push(layout, "multi", "test/multi", "latest", true);

        OciLayoutBuilder.writeIndex(layout, "armonly", List.of(
            new OciLayoutBuilder().platform("linux", "arm64", "v8")
                .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("arch", "arm64 only\n"))));
        reg.push(layout, "armonly", "test/armonly", "latest", true);

        byte[] big = new byte[200_000];
        new java.util.Random(42).nextBytes(big);
        corrupt = new OciLayoutBuilder()
            .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("random.bin", big, 0644))
            .layer(Compression.ZSTD, new OciLayoutBuilder.Tar().file("other.txt", "unique to the corrupt test " + System.nanoTime()))
            .writeLayout(layout, "corrupt");
        reg.push(layout, "corrupt", "test/corrupt", "v1", false);

        docker = new OciLayoutBuilder().dockerMediaTypes()
            .layer(Compression.GZIP, new OciLayoutBuilder.Tar().file("docker.txt", "docker media types\n")).env("A=1")
            .writeLayout(layout, "docker");
        reg.push(layout, "docker", "test/docker", "v1", false);

        client = new RegistryClient(RegistryConfig.defaults().withTimeouts(Duration.ofSeconds(5), Duration.ofSeconds(30)));
    }

    @AfterAll
    static void tearDown() {
        if (client != null) client.close();
        if (reg != null) reg.close();
    }

    @Test
    void anonymousPullResolvesManifestConfigAndLayers() throws Exception {
        PulledImage img = client.resolve(reg.ref("test/busybox:v1"), Credentials.ANONYMOUS, CancelToken.none());
        assertThat(img.manifestDigest()).isEqualTo(single.manifestDigest());
        assertThat(img.manifestMediaType()).isEqualTo(RegistryClient.OCI_MANIFEST);
        assertThat(img.indexDigest()).isNull();
        assertThat(img.configDigest()).isEqualTo(single.configDigest());
        assertThat(img.layers()).containsExactlyElementsOf(single.layers());
        assertThat(img.layers()).extracting(Descriptor::compression)
            .containsExactly(Compression.GZIP, Compression.ZSTD, Compression.NONE);
        assertThat(img.layers()).extracting(Descriptor::mediaType)
            .containsExactly(Descriptor.OCI_LAYER_GZIP, Descriptor.OCI_LAYER_ZSTD, Descriptor.OCI_LAYER_TAR);
        ImageConfig c = img.config();
        assertThat(c.env()).containsExactly("PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=hi=there");
        assertThat(c.envMap()).containsEntry("GREETING", "hi=there");
        assertThat(c.workingDir()).isEqualTo("/work");
        assertThat(c.user()).isEqualTo("1000:1000");
        assertThat(c.entrypoint()).containsExactly("/bin/sh", "-c");
        assertThat(c.cmd()).containsExactly("echo hello");
        assertThat(c.os()).isEqualTo("linux");
        assertThat(c.architecture()).isEqualTo("amd64");

        for (Descriptor d : img.layers()) {
            try (BlobStream in = client.openBlob(img.ref(), d, Credentials.ANONYMOUS)) {
                byte[] all = in.readAllBytes();
                assertThat(all).hasSize((int) d.size());
                assertThat(OciLayoutBuilder.sha256(all)).isEqualTo(d.digest());
                assertThat(in.isVerified()).isTrue();
            }
        }
        // the gzip layer really is the busybox rootfs
        List<String> names = new ArrayList<>();
        try (BlobStream in = client.openBlob(img.ref(), img.layers().getFirst(), Credentials.ANONYMOUS);
             TarArchiveInputStream tar = new TarArchiveInputStream(new GZIPInputStream(in))) {
            for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) names.add(e.getName());
            in.verifyFully();
            assertThat(in.isVerified()).isTrue();
        }
        assertThat(names).contains("bin/busybox", "bin/sh", "etc/passwd", "tmp/");
    }

    @Test
    void pullByDigestAndByTagPlusDigest() throws Exception {
        PulledImage byDigest = client.resolve(reg.ref("test/busybox@" + single.manifestDigest()), null, null);
        assertThat(byDigest.manifestDigest()).isEqualTo(single.manifestDigest());
        assertThat(byDigest.layers()).hasSize(3);
        PulledImage both = client.resolve(reg.ref("test/busybox:ignored@" + single.manifestDigest()), null, null);
        assertThat(both.manifestDigest()).isEqualTo(single.manifestDigest());
    }

    @Test
    void dockerSchema2MediaTypes() throws Exception {
        PulledImage img = client.resolve(reg.ref("test/docker:v1"), Credentials.ANONYMOUS, CancelToken.none());
        assertThat(img.manifestMediaType()).isEqualTo(RegistryClient.DOCKER_MANIFEST);
        assertThat(img.layers()).extracting(Descriptor::mediaType).containsExactly(Descriptor.DOCKER_LAYER_GZIP);
        assertThat(img.layers().getFirst().compression()).isEqualTo(Compression.GZIP);
        assertThat(img.config().env()).containsExactly("A=1");
    }

    @Test
    void multiArchIndexPicksVariantlessLinuxAmd64() throws Exception {
        PulledImage img = client.resolve(reg.ref("test/multi"), Credentials.ANONYMOUS, CancelToken.none());
        OciLayoutBuilder.Image amd64 = multi.images().get(2);
        assertThat(img.indexDigest()).isEqualTo(multi.indexDigest());
        assertThat(img.manifestDigest()).isEqualTo(amd64.manifestDigest());
        assertThat(img.layers()).containsExactlyElementsOf(amd64.layers());
        assertThat(img.config().env()).containsExactly("ARCH=amd64");
        // by index digest too
        PulledImage byDigest = client.resolve(reg.ref("test/multi@" + multi.indexDigest()), null, null);
        assertThat(byDigest.manifestDigest()).isEqualTo(amd64.manifestDigest());
    }

    @Test
    void indexWithoutAmd64IsUnsupported() {
        assertThatThrownBy(() -> client.resolve(reg.ref("test/armonly:latest"), null, null))
            .isInstanceOfSatisfying(RegistryException.class, e -> {
                assertThat(e.kind()).isEqualTo(RegistryException.Kind.UNSUPPORTED);
                assertThat(e.getMessage()).contains("no linux/amd64", "linux/arm64/v8");
            });
    }

    @Test
    void unknownRepositoryTagOrDigestIsNotFound() {
        for (String r : List.of("test/nope:v1", "test/busybox:nope", "test/busybox@sha256:" + "0".repeat(64))) {
            assertThatThrownBy(() -> client.resolve(reg.ref(r), null, null))
                .as(r)
                .isInstanceOfSatisfying(RegistryException.class, e -> {
                    assertThat(e.kind()).isEqualTo(RegistryException.Kind.NOT_FOUND);
                    assertThat(e.getMessage()).contains(reg.hostPort());
                });
        }
        Descriptor missing = new Descriptor(Descriptor.OCI_LAYER_GZIP, "sha256:" + "1".repeat(64), 10);
        assertThatThrownBy(() -> client.openBlob(reg.ref("test/busybox:v1"), missing, null))
            .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.kind()).isEqualTo(RegistryException.Kind.NOT_FOUND));
    }

    @Test
    void corruptBlobFailsAtEndOfStream() throws Exception {
        ImageReference ref = reg.ref("test/corrupt:v1");
        PulledImage img = client.resolve(ref, null, null);
        Descriptor layer = img.layers().getFirst();
        // flip one byte in the middle of the stored blob (same size, so only the digest can tell)
        try (RandomAccessFile f = new RandomAccessFile(reg.blobFile(layer.digest()).toFile(), "rw")) {
            long pos = f.length() / 2;
            f.seek(pos);
            int b = f.read();
            f.seek(pos);
            f.write(b ^ 0xff);
        }
        try (BlobStream in = client.openBlob(ref, layer, null)) {
            byte[] buf = new byte[8192];
            long total = 0;
            IOException failure = null;
            try {
                for (int n; (n = in.read(buf)) >= 0; ) total += n;
            } catch (IOException e) {
                failure = e;
            }
            assertThat(failure).as("reading a corrupt blob to the end must throw").isNotNull();
            assertThat(total).isEqualTo(layer.size()); // all bytes delivered, but EOF replaced by the error
            RegistryException re = RegistryException.from(failure);
            assertThat(re.kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH);
            assertThat(re.getMessage()).contains(layer.digest(), "digest mismatch");
            assertThat(in.isVerified()).isFalse();
            assertThatThrownBy(in::verifyFully).isInstanceOfSatisfying(RegistryException.class,
                e -> assertThat(e.kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH));
        }
        // a consumer that stops early (gzip+tar) must still learn about it via verifyFully()
        try (BlobStream in = client.openBlob(ref, layer, null)) {
            in.readNBytes(100);
            assertThatThrownBy(in::verifyFully).isInstanceOfSatisfying(RegistryException.class,
                e -> assertThat(e.kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH));
        }

        // truncated blob: size differs
        Descriptor second = img.layers().get(1);
        Path file = reg.blobFile(second.digest());
        byte[] orig = Files.readAllBytes(file);
        Files.write(file, java.util.Arrays.copyOf(orig, orig.length - 5));
        assertThatThrownBy(() -> {
            try (BlobStream in = client.openBlob(ref, second, null)) {
                in.readAllBytes();
            } catch (IOException e) {
                throw RegistryException.from(e);
            }
        }).isInstanceOfSatisfying(RegistryException.class, e -> {
            assertThat(e.kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH);
            assertThat(e.getMessage()).contains("size mismatch");
        });
    }

    @Test
    void descriptorWithWrongSizeIsRejected() throws Exception {
        PulledImage img = client.resolve(reg.ref("test/busybox:v1"), null, null);
        Descriptor d = img.layers().get(1);
        Descriptor lying = new Descriptor(d.mediaType(), d.digest(), d.size() - 1);
        assertThatThrownBy(() -> client.openBlob(img.ref(), lying, null))
            .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH));
    }

    @Test
    void cancelledBeforeRequest() {
        CancelToken cancelled = new CancelToken();
        cancelled.cancel(CancelToken.Reason.CLIENT_REQUEST);
        assertThatThrownBy(() -> client.resolve(reg.ref("test/busybox:v1"), null, cancelled))
            .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.kind()).isEqualTo(RegistryException.Kind.CANCELLED));
    }

    @Test
    void connectionRefusedIsNetwork() throws Exception {
        int port = TestRegistry.freePort();
        try (RegistryClient c = new RegistryClient(RegistryConfig.defaults())) {
            assertThatThrownBy(() -> c.resolve(ImageReference.parse("127.0.0.1:" + port + "/x/y:z"), null, null))
                .isInstanceOfSatisfying(RegistryException.class, e -> {
                    assertThat(e.kind()).isEqualTo(RegistryException.Kind.NETWORK);
                    assertThat(e.getMessage()).contains("127.0.0.1:" + port);
                });
        }
    }

    @SuppressWarnings("unused")
    private static String read(InputStream in) throws IOException {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
}

package dev.contree.registry;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class BlobStreamTest {
    static final byte[] DATA = "hello world".getBytes(StandardCharsets.UTF_8);
    static final String DIGEST = OciLayoutBuilder.sha256(DATA);

    static BlobStream stream(byte[] body, String digest, long size) {
        return new BlobStream(new ByteArrayInputStream(body), digest, size, "blob " + digest);
    }

    @Test
    void goodBlob() throws Exception {
        BlobStream s = stream(DATA, DIGEST, DATA.length);
        assertThat(s.readAllBytes()).isEqualTo(DATA);
        assertThat(s.isVerified()).isTrue();
        assertThat(s.read()).isEqualTo(-1);
        s.verifyFully();
    }

    @Test
    void wrongContentThrowsInsteadOfEof() {
        byte[] bad = DATA.clone();
        bad[0] ^= 1;
        BlobStream s = stream(bad, DIGEST, DATA.length);
        assertThatThrownBy(s::readAllBytes).isInstanceOfSatisfying(IOException.class, e ->
            assertThat(RegistryException.from(e).kind()).isEqualTo(RegistryException.Kind.DIGEST_MISMATCH));
        // keeps failing
        assertThatThrownBy(s::read).isInstanceOf(IOException.class);
        assertThat(s.isVerified()).isFalse();
    }

    @Test
    void shortAndLongBodies() {
        assertThatThrownBy(() -> stream(DATA, DIGEST, DATA.length + 1).verifyFully())
            .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.getMessage()).contains("size mismatch"));
        BlobStream longer = stream((new String(DATA) + "!").getBytes(), DIGEST, DATA.length);
        assertThatThrownBy(longer::verifyFully)
            .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.getMessage()).contains("larger than"));
    }

    @Test
    void skipStillHashes() throws Exception {
        BlobStream s = stream(DATA, DIGEST, DATA.length);
        assertThat(s.skip(5)).isEqualTo(5);
        s.verifyFully();
        assertThat(s.isVerified()).isTrue();
    }

    @Test
    void layerMediaTypes() {
        assertThat(new Descriptor(Descriptor.DOCKER_LAYER_GZIP, DIGEST, 1).compression()).isEqualTo(Compression.GZIP);
        assertThat(new Descriptor(Descriptor.OCI_LAYER_GZIP, DIGEST, 1).compression()).isEqualTo(Compression.GZIP);
        assertThat(new Descriptor(Descriptor.OCI_LAYER_ZSTD, DIGEST, 1).compression()).isEqualTo(Compression.ZSTD);
        assertThat(new Descriptor(Descriptor.OCI_LAYER_TAR, DIGEST, 1).compression()).isEqualTo(Compression.NONE);
        assertThat(new Descriptor(Descriptor.DOCKER_LAYER_TAR, DIGEST, 1).compression()).isEqualTo(Compression.NONE);
        assertThat(new Descriptor("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", DIGEST, 1).compression())
            .isEqualTo(Compression.ZSTD);
        Descriptor helm = new Descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", DIGEST, 1);
        assertThat(helm.isLayer()).isFalse();
        assertThatThrownBy(helm::compression).isInstanceOf(IllegalStateException.class);
    }
}

package dev.contree.registry;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ImageReferenceTest {
    static final String D = "sha256:" + "ab".repeat(32);

    @ParameterizedTest(name = "{0}")
    @CsvSource(nullValues = "null", value = {
        // input                                           registry             repository          tag          digest
        "docker://docker.io/library/alpine:latest,         docker.io,           library/alpine,     latest,      null",
        "oci://docker.io/library/alpine:3.20,              docker.io,           library/alpine,     3.20,        null",
        "docker://python:3.11-slim,                        docker.io,           library/python,     3.11-slim,   null",
        "alpine,                                           docker.io,           library/alpine,     latest,      null",
        "library/alpine,                                   docker.io,           library/alpine,     latest,      null",
        "nimlang/nim,                                      docker.io,           nimlang/nim,        latest,      null",
        "index.docker.io/library/ubuntu:22.04,             docker.io,           library/ubuntu,     22.04,       null",
        "registry-1.docker.io/library/ubuntu,              docker.io,           library/ubuntu,     latest,      null",
        "docker.io/alpine,                                 docker.io,           library/alpine,     latest,      null",
        "ghcr.io/o/i:tag,                                  ghcr.io,             o/i,                tag,         null",
        "docker://ghcr.io/owner/image:tag,                 ghcr.io,             owner/image,        tag,         null",
        "host:5000/x/y@" + "sha256:abababababababababababababababababababababababababababababababab" + ",host:5000, x/y, null, " + "sha256:abababababababababababababababababababababababababababababababab",
        "localhost:5000/busybox,                           localhost:5000,      busybox,            latest,      null",
        "localhost/busybox:1,                              localhost,           busybox,            1,           null",
        "127.0.0.1:5000/a/b/c:v1.2_3-x,                    127.0.0.1:5000,      a/b/c,              v1.2_3-x,    null",
        "[::1]:5000/busybox,                               [::1]:5000,          busybox,            latest,      null",
        "Quay.IO/org/repo_name.x__y--z,                    quay.io,             org/repo_name.x__y--z, latest,   null",
        "  docker://alpine:edge  ,                         docker.io,           library/alpine,     edge,        null",
        "DOCKER://alpine,                                  docker.io,           library/alpine,     latest,      null",
    })
    void parses(String input, String registry, String repository, String tag, String digest) {
        ImageReference r = ImageReference.parse(input);
        assertThat(r.registry()).isEqualTo(registry);
        assertThat(r.repository()).isEqualTo(repository);
        assertThat(r.tag()).isEqualTo(tag);
        assertThat(r.digest()).isEqualTo(digest);
    }

    @Test
    void tagAndDigestTogether() {
        ImageReference r = ImageReference.parse("alpine:3.20@" + D);
        assertThat(r.tag()).isEqualTo("3.20");
        assertThat(r.digest()).isEqualTo(D);
        assertThat(r.reference()).isEqualTo(D);
        assertThat(r.toString()).isEqualTo("docker.io/library/alpine:3.20@" + D);
        assertThat(ImageReference.parse("alpine@" + D).tag()).isNull();
    }

    @Test
    void apiHostAndLoopback() {
        assertThat(ImageReference.parse("alpine").apiHost()).isEqualTo("registry-1.docker.io");
        assertThat(ImageReference.parse("ghcr.io/a/b").apiHost()).isEqualTo("ghcr.io");
        assertThat(ImageReference.parse("localhost:5000/a").isLoopback()).isTrue();
        assertThat(ImageReference.parse("127.0.0.5:5000/a").isLoopback()).isTrue();
        assertThat(ImageReference.parse("[::1]:5000/a").isLoopback()).isTrue();
        assertThat(ImageReference.parse("ghcr.io/a/b").isLoopback()).isFalse();
        assertThat(ImageReference.parse("127.example.com/a").isLoopback()).isFalse();
        assertThat(ImageReference.parse("docker://python:3.11-slim").toString()).isEqualTo("docker.io/library/python:3.11-slim");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   ", "docker://", "Alpine", "library/Alpine", "alpine:", "alpine:-bad",
        "alpine@sha256:short", "alpine@md5:abc", "http://host/x", "ftp://x/y", "a//b", "/alpine", "alpine/", "host:99999/x",
        "al pine", "alpine:tag:tag2", "-alpine", "a..b", "ghcr.io/", "ghcr.io/x:", "caf\u00e9"})
    void rejects(String input) {
        assertThatThrownBy(() -> ImageReference.parse(input))
            .isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("image reference");
    }

    @Test
    void uppercaseRepoMessage() {
        assertThatThrownBy(() -> ImageReference.parse("ghcr.io/Owner/img")).hasMessageContaining("lowercase");
        assertThatThrownBy(() -> ImageReference.parse("http://localhost:5000/x")).hasMessageContaining("unsupported scheme");
        assertThatThrownBy(() -> ImageReference.parse(null)).isInstanceOf(IllegalArgumentException.class);
    }
}

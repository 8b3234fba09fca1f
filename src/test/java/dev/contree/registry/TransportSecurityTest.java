package dev.contree.registry;

import org.junit.jupiter.api.Test;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Plain-HTTP rules, redirect handling and protocol edge cases, against {@link FakeRegistry}. */
class TransportSecurityTest {
    /** TEST-NET-3: never routable; a connection attempt would hang until the connect timeout. */
    static final String REMOTE = "203.0.113.7";
    static final RegistryConfig CFG = RegistryConfig.defaults().withTimeouts(Duration.ofSeconds(20), Duration.ofSeconds(20));

    static void assertKind(ThrowingRunnable r, RegistryException.Kind kind, String... contains) {
        long t0 = System.nanoTime();
        assertThatThrownBy(r::run).isInstanceOfSatisfying(RegistryException.class, e -> {
            assertThat(e.kind()).as(e.getMessage()).isEqualTo(kind);
            if (contains.length > 0) assertThat(e.getMessage()).contains(contains);
        });
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).as("no connection attempt").isLessThan(Duration.ofSeconds(5));
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void plainHttpOnlyToLoopbackOrConfiguredHosts() throws Exception {
        try (RegistryClient c = new RegistryClient(CFG)) {
            assertKind(() -> c.checkTransport(URI.create("http://" + REMOTE + ":5000/v2/")), RegistryException.Kind.INSECURE,
                "refusing plain HTTP", REMOTE);
            assertKind(() -> c.checkTransport(URI.create("ftp://" + REMOTE + "/x")), RegistryException.Kind.INSECURE);
            c.checkTransport(URI.create("https://" + REMOTE + "/v2/"));
            c.checkTransport(URI.create("http://127.0.0.1:5000/v2/"));
            c.checkTransport(URI.create("http://localhost/v2/"));
            c.checkTransport(URI.create("http://[::1]:5000/v2/"));
        }
        RegistryConfig insecure = CFG.withInsecureHosts(Set.of(REMOTE, "other.example:5000"));
        try (RegistryClient c = new RegistryClient(insecure)) {
            c.checkTransport(URI.create("http://" + REMOTE + ":5000/v2/"));
            c.checkTransport(URI.create("http://other.example:5000/v2/"));
            assertKind(() -> c.checkTransport(URI.create("http://other.example:6000/v2/")), RegistryException.Kind.INSECURE);
        }
    }

    @Test
    void redirectToPlainHttpRemoteIsRefusedBeforeConnecting() throws Exception {
        String digest = OciLayoutBuilder.sha256(new byte[0]);
        try (FakeRegistry f = new FakeRegistry(); RegistryClient c = new RegistryClient(CFG)) {
            f.route("/v2/", ex -> FakeRegistry.send(ex, 200, "application/json", "{}"));
            f.route("/v2/x/y/blobs/" + digest, FakeRegistry.redirect("http://" + REMOTE + ":81/storage/blob"));
            ImageReference ref = ImageReference.parse(f.hostPort() + "/x/y:z");
            assertKind(() -> c.openBlob(ref, new Descriptor(Descriptor.OCI_LAYER_TAR, digest, 0), null),
                RegistryException.Kind.INSECURE, REMOTE);
        }
    }

    @Test
    void plainHttpTokenRealmOnRemoteHostIsRefused() throws Exception {
        try (FakeRegistry f = new FakeRegistry(); RegistryClient c = new RegistryClient(CFG)) {
            f.route("/v2/", ex -> {
                ex.getResponseHeaders().add("WWW-Authenticate", "Bearer realm=\"http://" + REMOTE + "/token\",service=\"s\"");
                FakeRegistry.send(ex, 401, "application/json", "{}");
            });
            ImageReference ref = ImageReference.parse(f.hostPort() + "/x/y:z");
            assertKind(() -> c.resolve(ref, new Credentials("u", "secret-pw"), null), RegistryException.Kind.INSECURE, REMOTE);
            assertThat(f.seen).extracting(FakeRegistry.Seen::path).containsOnly("/v2/");
        }
    }

    @Test
    void crossHostRedirectDropsAuthorization() throws Exception {
        byte[] data = "layer bytes".getBytes(StandardCharsets.UTF_8);
        String digest = OciLayoutBuilder.sha256(data);
        String basic = "Basic " + Base64.getEncoder().encodeToString("u:pw".getBytes(StandardCharsets.UTF_8));
        try (FakeRegistry reg = new FakeRegistry(); FakeRegistry storage = new FakeRegistry();
             RegistryClient c = new RegistryClient(CFG)) {
            FakeRegistry.Handler authed = ex -> {
                if (!basic.equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                    ex.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"r\"");
                    FakeRegistry.send(ex, 401, "application/json", "{}");
                    return;
                }
                if (ex.getRequestURI().getPath().equals("/v2/")) FakeRegistry.send(ex, 200, "application/json", "{}");
                else FakeRegistry.redirect("http://localhost:" + storage.port() + "/data?sig=1").handle(ex);
            };
            reg.route("/v2/", authed).route("/v2/x/y/blobs/" + digest, authed);
            storage.route("/data", ex -> FakeRegistry.send(ex, 200, "application/octet-stream", data));
            ImageReference ref = ImageReference.parse(reg.hostPort() + "/x/y:z");
            try (BlobStream in = c.openBlob(ref, new Descriptor(Descriptor.OCI_LAYER_TAR, digest, data.length), new Credentials("u", "pw"))) {
                assertThat(in.readAllBytes()).isEqualTo(data);
                assertThat(in.isVerified()).isTrue();
            }
            assertThat(storage.seen).hasSize(1);
            assertThat(storage.seen.getFirst().headers().getFirst("Authorization")).isNull();
            assertThat(reg.seen.getLast().headers().getFirst("Authorization")).isEqualTo(basic);
        }
    }

    @Test
    void schema1IsUnsupported() throws Exception {
        try (FakeRegistry f = new FakeRegistry(); RegistryClient c = new RegistryClient(CFG)) {
            f.route("/v2/", ex -> FakeRegistry.send(ex, 200, "application/json", "{}"));
            f.route("/v2/old/img/manifests/latest", ex -> FakeRegistry.send(ex, 200, RegistryClient.DOCKER_SCHEMA1_SIGNED,
                "{\"schemaVersion\":1,\"name\":\"old/img\",\"tag\":\"latest\",\"fsLayers\":[]}"));
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/old/img"), null, null),
                RegistryException.Kind.UNSUPPORTED, "schema 1");
            // the Accept header lists all four supported types
            String accept = f.seen.getLast().headers().getFirst("Accept");
            assertThat(accept).contains(RegistryClient.OCI_INDEX, RegistryClient.OCI_MANIFEST, RegistryClient.DOCKER_LIST,
                RegistryClient.DOCKER_MANIFEST);
        }
    }

    @Test
    void manifestNotMatchingRequestedDigestIsRejected() throws Exception {
        String body = "{\"schemaVersion\":2,\"mediaType\":\"" + RegistryClient.OCI_MANIFEST + "\",\"config\":{},\"layers\":[]}";
        String wrong = "sha256:" + "c".repeat(64);
        try (FakeRegistry f = new FakeRegistry(); RegistryClient c = new RegistryClient(CFG)) {
            f.route("/v2/", ex -> FakeRegistry.send(ex, 200, "application/json", "{}"));
            f.route("/v2/a/b/manifests/" + wrong, ex -> FakeRegistry.send(ex, 200, RegistryClient.OCI_MANIFEST, body));
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/a/b@" + wrong), null, null),
                RegistryException.Kind.DIGEST_MISMATCH, wrong);
        }
    }

    @Test
    void unsupportedLayerMediaTypeAndServerErrors() throws Exception {
        String d = "sha256:" + "d".repeat(64);
        String manifest = "{\"schemaVersion\":2,\"mediaType\":\"" + RegistryClient.OCI_MANIFEST + "\",\"config\":{\"mediaType\":\""
            + RegistryClient.OCI_CONFIG + "\",\"digest\":\"" + d + "\",\"size\":2},\"layers\":[{\"mediaType\":"
            + "\"application/vnd.cncf.helm.chart.content.v1.tar+gzip\",\"digest\":\"" + d + "\",\"size\":3}]}";
        try (FakeRegistry f = new FakeRegistry(); RegistryClient c = new RegistryClient(CFG)) {
            f.route("/v2/", ex -> FakeRegistry.send(ex, 200, "application/json", "{}"));
            f.route("/v2/a/helm/manifests/1", ex -> FakeRegistry.send(ex, 200, RegistryClient.OCI_MANIFEST, manifest));
            f.route("/v2/a/busy/manifests/1", ex -> FakeRegistry.send(ex, 503, "text/plain", "down"));
            f.route("/v2/a/limited/manifests/1", ex -> FakeRegistry.send(ex, 429, "application/json", "{}"));
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/a/helm:1"), null, null),
                RegistryException.Kind.UNSUPPORTED, "helm.chart");
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/a/busy:1"), null, null),
                RegistryException.Kind.NETWORK, "503");
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/a/limited:1"), null, null),
                RegistryException.Kind.NETWORK, "rate limiting");
            assertKind(() -> c.resolve(ImageReference.parse(f.hostPort() + "/a/unknown:1"), null, null),
                RegistryException.Kind.NOT_FOUND, "a/unknown");
        }
    }
}

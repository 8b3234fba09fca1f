package dev.contree.registry;

import dev.contree.cancel.CancelToken;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Basic (htpasswd) and Bearer (token server) authentication against real docker-registry processes. */
class RegistryAuthTest {
    static final String USER = "alice";
    static final String PASSWORD = "Pa55-w0rd-s3cret";

    @TempDir
    static Path tmp;
    static TestRegistry basicReg;
    static TokenServer tokens;
    static TestRegistry tokenReg;
    static OciLayoutBuilder.Image image;

    @BeforeAll
    static void setUp() throws Exception {
        Path layout = tmp.resolve("layout");
        image = new OciLayoutBuilder()
            .layer(Compression.GZIP, new OciLayoutBuilder.Tar().dir("etc").file("etc/hello", "auth test\n"))
            .layer(Compression.ZSTD, new OciLayoutBuilder.Tar().file("etc/second", "zstd\n"))
            .env("X=1").writeLayout(layout, "v1");
        basicReg = TestRegistry.startHtpasswd(tmp, USER, PASSWORD);
        basicReg.push(layout, "v1", "private/app", "v1", false);
        tokens = TokenServer.start(tmp, USER, PASSWORD);
        tokenReg = TestRegistry.startToken(tmp, tokens);
        tokenReg.push(layout, "v1", "private/app", "v1", false);
    }

    @AfterAll
    static void tearDown() {
        if (basicReg != null) basicReg.close();
        if (tokenReg != null) tokenReg.close();
        if (tokens != null) tokens.close();
    }

    private static void pullAll(RegistryClient c, ImageReference ref, Credentials creds) throws Exception {
        PulledImage img = c.resolve(ref, creds, CancelToken.none());
        assertThat(img.manifestDigest()).isEqualTo(image.manifestDigest());
        assertThat(img.config().env()).containsExactly("X=1");
        for (Descriptor d : img.layers()) {
            try (BlobStream in = c.openBlob(ref, d, creds)) {
                in.verifyFully();
                assertThat(in.isVerified()).isTrue();
            }
        }
    }

    private static void assertAuthError(ThrowingRunnable r, String... contains) {
        assertThatThrownBy(r::run).isInstanceOfSatisfying(RegistryException.class, e -> {
            assertThat(e.kind()).isEqualTo(RegistryException.Kind.AUTH);
            assertThat(e.getMessage()).contains(contains).doesNotContain(PASSWORD).doesNotContain("wrong-" + PASSWORD);
        });
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    @Test
    void basicAuthWithRightCredentials() throws Exception {
        try (RegistryClient c = new RegistryClient(RegistryConfig.defaults())) {
            pullAll(c, basicReg.ref("private/app:v1"), new Credentials(USER, PASSWORD));
            pullAll(c, basicReg.ref("private/app:v1"), new Credentials(USER, PASSWORD)); // cached challenge path
        }
    }

    @Test
    void basicAuthWrongOrMissingCredentials() {
        try (RegistryClient c = new RegistryClient(RegistryConfig.defaults())) {
            ImageReference ref = basicReg.ref("private/app:v1");
            assertAuthError(() -> c.resolve(ref, new Credentials(USER, "wrong-" + PASSWORD), null),
                "authentication failed", USER, basicReg.hostPort());
            assertAuthError(() -> c.resolve(ref, Credentials.ANONYMOUS, null), "requires credentials");
            Descriptor layer = image.layers().getFirst();
            assertAuthError(() -> c.openBlob(ref, layer, new Credentials(USER, "wrong-" + PASSWORD)), "authentication failed");
        }
    }

    @Test
    void tokenAuthWithRightCredentialsAndTokenCaching() throws Exception {
        try (RegistryClient c = new RegistryClient(RegistryConfig.defaults())) {
            ImageReference ref = tokenReg.ref("private/app:v1");
            int before = tokens.requests.get();
            pullAll(c, ref, new Credentials(USER, PASSWORD));
            int afterFirst = tokens.requests.get();
            assertThat(afterFirst - before).as("one token for the repository scope").isEqualTo(1);
            pullAll(c, ref, new Credentials(USER, PASSWORD));
            assertThat(tokens.requests.get()).as("token reused from cache").isEqualTo(afterFirst);
        }
    }

    @Test
    void tokenAuthWrongOrMissingCredentials() {
        try (RegistryClient c = new RegistryClient(RegistryConfig.defaults())) {
            ImageReference ref = tokenReg.ref("private/app:v1");
            assertAuthError(() -> c.resolve(ref, new Credentials(USER, "wrong-" + PASSWORD), null),
                "authentication failed", USER);
            // anonymous token has no access: registry answers 401 → denied
            assertAuthError(() -> c.resolve(ref, Credentials.ANONYMOUS, null), "denied", "private/app");
        }
    }

    @Test
    void credentialsToStringHidesPassword() {
        assertThat(new Credentials(USER, PASSWORD).toString()).contains(USER).doesNotContain(PASSWORD);
        assertThat(Credentials.ANONYMOUS.anonymous()).isTrue();
        assertThat(new Credentials(null, null).anonymous()).isTrue();
    }
}

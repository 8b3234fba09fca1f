package dev.contree.registry;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code docker-registry} (Debian package, distribution v2.8) on a free loopback port, with filesystem
 * storage in a directory you own; plus {@link #push} via {@code skopeo copy}. Close it to stop the process.
 *
 * <pre>{@code
 * try (TestRegistry reg = TestRegistry.start(tmp)) {                                  // anonymous
 *     reg.push(layoutDir, "v1", "test/busybox", "v1", null, false);
 *     ImageReference ref = ImageReference.parse(reg.hostPort() + "/test/busybox:v1");
 * }
 * TestRegistry.startHtpasswd(tmp, "alice", "s3cret");                                 // Basic auth
 * TestRegistry.startToken(tmp, TokenServer.start(tmp, "alice", "s3cret"));           // Bearer token auth
 * }</pre>
 *
 * Needs {@code /usr/bin/docker-registry}, {@code skopeo}, and for htpasswd mode {@code htpasswd} (apache2-utils) or
 * python3 with the crypt module.
 */
public final class TestRegistry implements AutoCloseable {
    private final Process process;
    private final Path root;
    private final Path storage;
    private final int port;
    private final Credentials pushCredentials;

    private TestRegistry(Process process, Path root, Path storage, int port, Credentials pushCredentials) {
        this.process = process;
        this.root = root;
        this.storage = storage;
        this.port = port;
        this.pushCredentials = pushCredentials;
    }

    /** Anonymous read/write registry. */
    public static TestRegistry start(Path workDir) throws IOException {
        return start(workDir, "", null);
    }

    /** Registry with {@code auth: htpasswd} (Basic challenge); push and pull need the credentials. */
    public static TestRegistry startHtpasswd(Path workDir, String user, String password) throws IOException {
        Path root = Files.createDirectories(workDir.resolve("registry-" + System.nanoTime()));
        Path htpasswd = root.resolve("htpasswd");
        Files.writeString(htpasswd, bcryptLine(user, password));
        String auth = "auth:\n  htpasswd:\n    realm: test-registry\n    path: " + htpasswd + "\n";
        return start(root, auth, new Credentials(user, password));
    }

    /** Registry with {@code auth: token} delegating to {@code tokens} (Bearer challenge). */
    public static TestRegistry startToken(Path workDir, TokenServer tokens) throws IOException {
        Path root = Files.createDirectories(workDir.resolve("registry-" + System.nanoTime()));
        String auth = "auth:\n  token:\n    realm: " + tokens.realm() + "\n    service: " + TokenServer.SERVICE
            + "\n    issuer: " + TokenServer.ISSUER + "\n    rootcertbundle: " + tokens.certBundle() + "\n";
        return start(root, auth, new Credentials(tokens.user(), tokens.password()));
    }

    private static TestRegistry start(Path workDir, String authYaml, Credentials creds) throws IOException {
        Path root = workDir.getFileName().toString().startsWith("registry-") ? workDir
            : Files.createDirectories(workDir.resolve("registry-" + System.nanoTime()));
        Path storage = Files.createDirectories(root.resolve("storage"));
        IOException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            int port = freePort();
            Path cfg = root.resolve("config.yml");
            Files.writeString(cfg, """
                version: 0.1
                log:
                  level: warn
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: %s
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:%d
                  secret: contree-test-secret
                %s""".formatted(storage, port, authYaml));
            Process p = new ProcessBuilder("/usr/bin/docker-registry", "serve", cfg.toString())
                .redirectErrorStream(true)
                .redirectOutput(root.resolve("registry.log").toFile())
                .start();
            TestRegistry reg = new TestRegistry(p, root, storage, port, creds);
            try {
                reg.awaitReady();
                return reg;
            } catch (IOException e) {
                last = e;
                reg.close();
            }
        }
        throw last;
    }

    private void awaitReady() throws IOException {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) throw new IOException("docker-registry exited: " + log());
            try {
                HttpResponse<Void> r = http.send(HttpRequest.newBuilder(URI.create("http://" + hostPort() + "/v2/"))
                    .version(HttpClient.Version.HTTP_1_1).build(), HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() == 200 || r.statusCode() == 401) return;
            } catch (IOException e) {
                // not yet listening
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
        throw new IOException("docker-registry did not become ready: " + log());
    }

    public String log() {
        try {
            return Files.readString(root.resolve("registry.log"));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    public int port() {
        return port;
    }

    /** {@code 127.0.0.1:<port>} — use as the registry part of image references. */
    public String hostPort() {
        return "127.0.0.1:" + port;
    }

    public ImageReference ref(String repoAndTag) {
        return ImageReference.parse(hostPort() + "/" + repoAndTag);
    }

    public Path storageDir() {
        return storage;
    }

    /** The registry's file holding blob {@code digest} (tamper with it to simulate corruption). */
    public Path blobFile(String digest) {
        String hex = digest.substring("sha256:".length());
        return storage.resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
    }

    /**
     * {@code skopeo copy [--all] oci:<layout>:<tag> docker://<this>/<repo>:<destTag>} with this registry's
     * credentials (if it has any).
     */
    public void push(Path layout, String tag, String repo, String destTag, boolean all) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false"));
        if (all) cmd.add("--all");
        if (pushCredentials != null) cmd.addAll(List.of("--dest-creds", pushCredentials.username() + ":" + pushCredentials.password()));
        cmd.add("oci:" + layout + ":" + tag);
        cmd.add("docker://" + hostPort() + "/" + repo + ":" + destTag);
        run(cmd, root);
    }

    static String run(List<String> cmd, Path dir) throws IOException {
        Path out = Files.createTempFile(dir, "cmd", ".log");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        try {
            if (!p.waitFor(180, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("timed out: " + cmd.getFirst());
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        String output = Files.readString(out);
        if (p.exitValue() != 0) throw new IOException(cmd.getFirst() + " failed (" + p.exitValue() + "): " + output);
        return output;
    }

    /** A bcrypt htpasswd line ({@code htpasswd -Bbn}, falling back to python3's crypt module). */
    static String bcryptLine(String user, String password) throws IOException {
        Path tmp = Files.createTempDirectory("htpasswd");
        try {
            if (Files.isExecutable(Path.of("/usr/bin/htpasswd"))) {
                return run(List.of("/usr/bin/htpasswd", "-Bbn", user, password), tmp).strip() + "\n";
            }
            String hash = run(List.of("python3", "-W", "ignore", "-c",
                "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", password), tmp).strip();
            return user + ":" + hash + "\n";
        } finally {
            try (var s = Files.list(tmp)) {
                for (Path f : s.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(tmp);
        }
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
        }
    }
}

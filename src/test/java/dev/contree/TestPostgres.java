package dev.contree;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A real PostgreSQL 15 server (Debian's {@code postgresql} package) in a temp dir, for tests: {@code initdb} and
 * {@code pg_ctl} as an unprivileged user (PostgreSQL refuses to run as root: the distribution's {@code postgres}
 * user, else a {@code contree-test} system user made here), listening on 127.0.0.1 at a free port and on a unix
 * socket in the temp dir, password authentication over TCP. Its collation is ICU's en-US, which sorts unlike
 * bytes, so a store that forgot to compare bytewise shows it. {@link #close} stops it and removes the dir.
 *
 * <p>Without the binaries it fails, never skips: CI installs them (bin/packages.sh).
 */
public final class TestPostgres implements AutoCloseable {
    public static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
    public static final String SUPERUSER = "contree";
    private static final String PASSWORD = "p@ss:w/rd%20"; // characters a URL must escape
    private static final AtomicInteger DATABASES = new AtomicInteger();

    public final Path dir;
    public final int port;
    private final String osUser;

    private TestPostgres(Path dir, int port, String osUser) {
        this.dir = dir;
        this.port = port;
        this.osUser = osUser;
    }

    public static TestPostgres start() throws IOException, InterruptedException {
        if (!Files.isExecutable(BIN.resolve("initdb")) || !Files.isExecutable(BIN.resolve("pg_ctl"))) {
            throw new IllegalStateException("PostgreSQL 15 is not installed (no " + BIN + "/initdb): apt-get install postgresql"
                    + " (bin/packages.sh lists it for the tests)");
        }
        String user = root() ? serviceUser() : null;
        Path dir = Files.createTempDirectory("contree-pg");
        try {
            Path pw = dir.resolve("pwfile");
            Files.writeString(pw, PASSWORD + "\n");
            if (user != null) run(List.of("chown", "-R", user, dir.toString()), null);
            as(user, BIN.resolve("initdb").toString(), "-D", dir.resolve("data").toString(), "-U", SUPERUSER, "--pwfile=" + pw,
                    "-E", "UTF8", "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync");
            Files.delete(pw);
            IOException last = null;
            for (int attempt = 0; attempt < 3; attempt++) {
                int port = freePort();
                try {
                    as(user, BIN.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-l", dir.resolve("log").toString(),
                            "-w", "-t", "60", "-o", options(port, dir), "start");
                    return new TestPostgres(dir, port, user);
                } catch (IOException e) {
                    // Most likely the port was taken meanwhile: another one, and the server's own words if not.
                    Path log = dir.resolve("log");
                    last = new IOException(e.getMessage() + (Files.exists(log) ? "\n" + Files.readString(log) : ""), e);
                }
            }
            throw last;
        } catch (IOException | InterruptedException | RuntimeException e) {
            remove(dir);
            throw e;
        }
    }

    /** A new, empty database; returns its URL as {@code serve --database} takes it (the superuser's password escaped). */
    public String createDatabase() throws SQLException {
        String name = "contree_" + ProcessHandle.current().pid() + "_" + DATABASES.incrementAndGet();
        try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE " + name); // a name made here, never input
        }
        return url(name);
    }

    public String url(String database) {
        return "postgresql://" + SUPERUSER + ":" + java.net.URLEncoder.encode(PASSWORD, StandardCharsets.UTF_8).replace("+", "%20")
                + "@127.0.0.1:" + port + "/" + database;
    }

    /** The database's name in a URL from {@link #createDatabase}. */
    public static String name(String url) {
        return url.substring(url.lastIndexOf('/') + 1);
    }

    public void dropDatabase(String url) throws SQLException {
        try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
            s.execute("DROP DATABASE IF EXISTS " + name(url) + " WITH (FORCE)");
        }
    }

    /** A superuser connection to {@code database}, for what a test checks or breaks by hand. */
    public Connection connect(String database) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", SUPERUSER);
        p.setProperty("password", PASSWORD);
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/" + database, p);
    }

    /** Stops the server as an operator's {@code pg_ctl stop -m fast} does (sessions are ended); the data dir stays. */
    public void stopServer() throws IOException, InterruptedException {
        as(osUser, BIN.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-m", "fast", "-w", "stop");
    }

    /** Starts the stopped server again on the same port and data dir (a restart, as after maintenance). */
    public void startServer() throws IOException, InterruptedException {
        as(osUser, BIN.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-l", dir.resolve("log").toString(),
                "-w", "-t", "60", "-o", options(port, dir), "start");
    }

    private static String options(int port, Path dir) {
        // Durability is not under test: no fsync, so a test's databases come and go quickly.
        return "-c listen_addresses=127.0.0.1 -p " + port + " -k " + dir
                + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200";
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            as(osUser, BIN.resolve("pg_ctl").toString(), "-D", dir.resolve("data").toString(), "-m", "fast", "-w", "stop");
        } finally {
            remove(dir);
        }
    }

    private static boolean root() {
        return new com.sun.security.auth.module.UnixSystem().getUid() == 0;
    }

    /** {@code postgres} where the package made it, else a system user of our own, made once. */
    private static synchronized String serviceUser() throws IOException, InterruptedException {
        for (String user : List.of("postgres", "contree-test")) {
            if (new ProcessBuilder("id", "-u", user).start().waitFor() == 0) return user;
        }
        run(List.of("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                "contree-test"), null);
        return "contree-test";
    }

    /** Runs a PostgreSQL program as {@code user} (null: as this process's user). */
    private static void as(String user, String... command) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>();
        if (user != null) argv.addAll(List.of("runuser", "-u", user, "--"));
        argv.addAll(List.of(command));
        run(argv, Path.of(command[0]).getParent());
    }

    private static void run(List<String> argv, Path cwd) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
        if (cwd != null) pb.directory(cwd.toFile()); // runuser'd programs cannot enter root's working directory
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(String.join(" ", argv) + ": timed out");
        }
        if (p.exitValue() != 0) {
            throw new IOException(String.join(" ", argv) + " exited " + p.exitValue() + ": " + new String(out, StandardCharsets.UTF_8));
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private static void remove(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}

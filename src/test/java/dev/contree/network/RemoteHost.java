package dev.contree.network;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A "remote" host on this machine for networking tests: a network namespace of its own (held by its server
 * process, not named under /run/netns) joined to the host by a veth pair. The host end is {@code 10.231.S.1/24}; the
 * remote answers HTTP on port 8000 at {@code 10.231.S.2} (allowed by the tests' policy), {@code 10.231.S.3} (denied
 * by it) and {@code 169.254.169.254} (the metadata address, routed here by a host route for the test's duration so
 * that nothing could leave the machine even if the policy failed), and DNS on {@code 10.231.S.2:53}:
 * {@code remote.contree.test} is {@code 10.231.S.2}, {@code denied.contree.test} is {@code 10.231.S.3}. Every HTTP request
 * is logged with the address it reached.
 */
final class RemoteHost implements AutoCloseable {
    static final String NAME = "remote.contree.test", DENIED_NAME = "denied.contree.test", MARKER = "remote-says-hello";
    static final String METADATA = "169.254.169.254";

    final int subnet;
    final String hostEnd, allowed, denied, hostIf;
    final Path dir;
    private final Process server;
    private final List<String> requests = new CopyOnWriteArrayList<>();

    private static final String SERVER = """
            import http.server, socket, socketserver, struct, sys, threading, time
            names = {b"remote.contree.test": sys.argv[2], b"denied.contree.test": sys.argv[3]}
            def dns():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                while True:
                    try:
                        s.bind((sys.argv[2], 53)); break
                    except OSError:
                        time.sleep(0.05)
                while True:
                    q, peer = s.recvfrom(512)
                    try:
                        qid, flags = struct.unpack(">HH", q[:4]); i = 12; labels = []
                        while q[i]:
                            labels.append(q[i + 1:i + 1 + q[i]]); i += 1 + q[i]
                        name = b".".join(labels).lower(); qtype = struct.unpack(">H", q[i + 1:i + 3])[0]; question = q[12:i + 5]
                        ip = names.get(name)
                        if ip is None:
                            s.sendto(struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, peer)
                        elif qtype != 1:
                            s.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question, peer)
                        else:
                            answer = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
                            s.sendto(struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer, peer)
                    except Exception as e:
                        print("dns error", e, flush=True)
            class Handler(http.server.SimpleHTTPRequestHandler):
                def __init__(self, *a, **k):
                    super().__init__(*a, directory=sys.argv[1], **k)
                def log_message(self, fmt, *args):
                    print("request", self.connection.getsockname()[0], self.path, flush=True)
            class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
                daemon_threads = True
                allow_reuse_address = True
            threading.Thread(target=dns, daemon=True).start()
            while True:
                try:
                    httpd = Server(("0.0.0.0", 8000), Handler); break
                except OSError:
                    time.sleep(0.05)
            print("ready", flush=True)
            httpd.serve_forever()
            """;

    private RemoteHost(int subnet, Path dir, Process server) {
        this.subnet = subnet;
        this.hostEnd = "10.231." + subnet + ".1";
        this.allowed = "10.231." + subnet + ".2";
        this.denied = "10.231." + subnet + ".3";
        this.hostIf = "ctr" + subnet + "h";
        this.dir = dir;
        this.server = server;
    }

    /** The remote on {@code 10.231.subnet.0/24}, serving {@code hello.txt} and {@code blob} ({@code blobBytes} random bytes). */
    static RemoteHost start(int subnet, long blobBytes) throws Exception {
        String hostIf = "ctr" + subnet + "h", remoteIf = "ctr" + subnet + "r";
        run("ip", "link", "del", hostIf); // a crashed run's
        run("ip", "route", "del", METADATA + "/32", "dev", hostIf);
        Path dir = Files.createTempDirectory("contree-remote");
        Files.writeString(dir.resolve("hello.txt"), MARKER + "\n");
        if (blobBytes > 0) {
            try (var out = Files.newOutputStream(dir.resolve("blob"))) {
                java.util.Random r = new java.util.Random(42);
                byte[] buf = new byte[1 << 20];
                for (long left = blobBytes; left > 0; left -= buf.length) {
                    r.nextBytes(buf);
                    out.write(buf, 0, (int) Math.min(buf.length, left));
                }
            }
        }
        Path script = dir.resolve("server.py");
        Files.writeString(script, SERVER);
        String a = "10.231." + subnet + ".2", d = "10.231." + subnet + ".3";
        Process p = new ProcessBuilder("unshare", "--net", "--", "python3", "-u", script.toString(), dir.toString(), a, d)
                .redirectErrorStream(true).start();
        RemoteHost h = new RemoteHost(subnet, dir, p);
        try {
            String ns = "/proc/" + p.pid() + "/ns/net";
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (Files.readSymbolicLink(Path.of(ns)).equals(Files.readSymbolicLink(Path.of("/proc/self/ns/net")))) {
                if (System.nanoTime() > deadline || !p.isAlive()) throw new IOException("the remote's namespace did not appear");
                Thread.sleep(5);
            }
            sh("ip", "link", "add", hostIf, "type", "veth", "peer", "name", remoteIf, "netns", Long.toString(p.pid()));
            sh("ip", "addr", "add", h.hostEnd + "/24", "dev", hostIf);
            sh("ip", "link", "set", hostIf, "up");
            String in = "--net=" + ns;
            sh("nsenter", in, "ip", "addr", "add", a + "/24", "dev", remoteIf);
            sh("nsenter", in, "ip", "addr", "add", d + "/24", "dev", remoteIf);
            sh("nsenter", in, "ip", "addr", "add", METADATA + "/32", "dev", "lo");
            sh("nsenter", in, "ip", "link", "set", "lo", "up");
            sh("nsenter", in, "ip", "link", "set", remoteIf, "up");
            sh("nsenter", in, "ip", "route", "add", "default", "via", h.hostEnd);
            sh("ip", "route", "add", METADATA + "/32", "via", a, "dev", hostIf);
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (!"ready".equals(line)) throw new IOException("the remote's server did not start: " + line);
            Thread.ofVirtual().start(() -> {
                try {
                    for (String l; (l = out.readLine()) != null; ) if (l.startsWith("request ")) h.requests.add(l.substring(8));
                } catch (IOException ignored) {
                }
            });
            return h;
        } catch (Exception e) {
            h.close();
            throw e;
        }
    }

    /** The process that holds the remote's namespace. */
    long serverPid() {
        return server.pid();
    }

    /** "address path" of each HTTP request so far. */
    List<String> requests() {
        return new ArrayList<>(requests);
    }

    String url(String address, String path) {
        return "http://" + address + ":8000/" + path;
    }

    @Override
    public void close() throws Exception {
        server.destroyForcibly();
        server.waitFor(10, TimeUnit.SECONDS);
        run("ip", "route", "del", METADATA + "/32", "dev", hostIf);
        run("ip", "link", "del", hostIf); // gone with the namespace already, normally
        try (var walk = Files.walk(dir)) {
            for (Path f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
        }
    }

    static void sh(String... cmd) throws Exception {
        int rc = run(cmd);
        if (rc != 0) throw new IOException(String.join(" ", cmd) + " failed with " + rc);
    }

    static int run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try (InputStream in = p.getInputStream()) {
            in.readAllBytes();
        }
        return p.waitFor();
    }
}

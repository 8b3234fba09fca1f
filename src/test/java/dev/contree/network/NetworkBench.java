package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The networking benchmark, run by {@code bench/network.sh}: per runtime, the latency a network adds to {@code true}
 * through the API (interleaved with non-networked runs, shuffled per round), and the throughput of a 100 MiB HTTP
 * download from the test's remote host in a networked sandbox against the same download by the same client (busybox
 * wget) on the host itself. Then the uplink alone: set-up and tear-down time and what its processes cost in memory.
 * Args: {@code runc|runsc|both}; env {@code BENCH_N} (latency rounds, 30), {@code BENCH_DOWNLOADS} (5).
 */
public final class NetworkBench {
    static final int POLL_MS = 5;
    static final long BLOB = 100L << 20;

    public static void main(String[] args) throws Exception {
        String which = args.length > 0 ? args[0] : "both";
        List<String> runtimes = which.equals("both") ? List.of("runc", "runsc") : List.of(which);
        int n = Integer.parseInt(System.getenv().getOrDefault("BENCH_N", "30"));
        int downloads = Integer.parseInt(System.getenv().getOrDefault("BENCH_DOWNLOADS", "5"));
        System.out.printf(Locale.ROOT, "# network bench %s, %d cores, kernel %s, runsc %s, slirp4netns %s%n", Instant.now(),
                Runtime.getRuntime().availableProcessors(), System.getProperty("os.version"), version("runsc", "--version"),
                version("slirp4netns", "--version"));
        try (RemoteHost remote = RemoteHost.start(45, BLOB)) {
            String url = remote.url(remote.allowed, "blob");
            List<Double> host = new ArrayList<>();
            for (int i = 0; i < downloads + 1; i++) {
                long t0 = System.nanoTime();
                Process p = new ProcessBuilder("busybox", "wget", "-q", "-O", "/dev/null", url).inheritIO().start();
                if (p.waitFor() != 0) throw new IllegalStateException("host download failed");
                if (i > 0) host.add((System.nanoTime() - t0) / 1e9); // the first warms the remote's page cache
            }
            double hostMiBs = (BLOB / 1048576.0) / median(host);
            System.out.printf(Locale.ROOT, "host download (busybox wget, %d runs): median %.3f s = %.0f MiB/s (runs %s)%n",
                    host.size(), median(host), hostMiBs, fmt(host));
            for (String rt : runtimes) runtime(rt, remote, url, n, downloads, hostMiBs);
            uplinkAlone(remote);
        }
    }

    static void runtime(String rt, RemoteHost remote, String url, int n, int downloads, double hostMiBs) throws Exception {
        try (TestServer s = TestServer.inTempDir("netbench-" + rt, c -> c.withRuntime(rt, "ptrace").withNetwork(NetworkingTestBase.policy(remote)))) {
            String image = s.importBusybox(null);
            for (int i = 0; i < 5; i++) { // warm-up, untimed
                run(s, image, "true", false);
                run(s, image, "true", true);
            }
            List<Double> plain = new ArrayList<>(), net = new ArrayList<>(), plainSandbox = new ArrayList<>(), netSandbox = new ArrayList<>();
            Random order = new Random(1);
            for (int i = 0; i < n; i++) {
                List<Boolean> round = new ArrayList<>(List.of(false, true));
                Collections.shuffle(round, order);
                for (boolean networked : round) {
                    long t0 = System.nanoTime();
                    JsonNode op = run(s, image, "true", networked);
                    double total = (System.nanoTime() - t0) / 1e6;
                    double sandbox = between(Instant.parse(op.get("started_at").asText()), Instant.parse(op.get("finished_at").asText()));
                    (networked ? net : plain).add(total);
                    (networked ? netSandbox : plainSandbox).add(sandbox);
                }
            }
            System.out.printf(Locale.ROOT, "%n== %s: `true` through the API, %d interleaved rounds (client ms: POST + poll every %d ms)%n", rt, n, POLL_MS);
            System.out.printf(Locale.ROOT, "  no network : median %6.1f  p90 %6.1f   (server started->finished median %6.1f)%n",
                    median(plain), p90(plain), median(plainSandbox));
            System.out.printf(Locale.ROOT, "  networked  : median %6.1f  p90 %6.1f   (server started->finished median %6.1f)%n",
                    median(net), p90(net), median(netSandbox));
            System.out.printf(Locale.ROOT, "  network adds %.1f ms (median), %.2fx%n", median(net) - median(plain), median(net) / median(plain));

            List<Double> secs = new ArrayList<>();
            long received = 0;
            for (int i = 0; i < downloads; i++) {
                JsonNode op = run(s, image, "wget -q -O /dev/null " + url, true, false);
                JsonNode res = op.get("metadata").get("result").get("resources");
                if (op.get("metadata").get("result").get("state").get("exit_code").asInt() != 0) throw new IllegalStateException("download failed: " + op);
                secs.add(res.get("elapsed_time").asDouble());
                received = res.get("network_bytes_received").asLong();
            }
            double mibs = (BLOB / 1048576.0) / median(secs);
            System.out.printf(Locale.ROOT, "  100 MiB download in the sandbox (wget's own wall time, %d runs): median %.3f s = %.0f MiB/s, "
                    + "%.2fx the host's %.0f MiB/s (runs %s); the interface counted %d bytes received%n",
                    secs.size(), median(secs), mibs, mibs / hostMiBs, hostMiBs, fmt(secs), received);
        }
    }

    /** The uplink without a sandbox: attach and close, and the resident memory of its two processes. */
    static void uplinkAlone(RemoteHost remote) throws Exception {
        Path dir = Files.createTempDirectory("netbench-uplink");
        try (SandboxNetworks networks = SandboxNetworks.open(NetworkingTestBase.policy(remote), dir.resolve("state"), dir.resolve("data"), "contree-bench")) {
            List<Double> up = new ArrayList<>(), down = new ArrayList<>();
            long slirpRss = 0, holderRss = 0;
            for (int i = 0; i < 35; i++) {
                long t0 = System.nanoTime();
                SlirpUplink u = (SlirpUplink) networks.attach("bench-" + i, 1.0);
                double a = (System.nanoTime() - t0) / 1e6;
                long[] pids = u.pids();
                slirpRss = rssKiB(pids[0]);
                holderRss = rssKiB(pids[1]);
                t0 = System.nanoTime();
                u.close();
                double c = (System.nanoTime() - t0) / 1e6;
                if (i >= 5) {
                    up.add(a);
                    down.add(c);
                }
            }
            System.out.printf(Locale.ROOT, "%n== uplink alone (holder + slirp4netns, 30 runs): attach median %.1f ms p90 %.1f, close median %.1f ms p90 %.1f;"
                    + " resident: slirp4netns %d KiB, holder %d KiB%n", median(up), p90(up), median(down), p90(down), slirpRss, holderRss);
        } finally {
            dev.contree.TestDirs.removeWithMounts(dir);
        }
    }

    static long rssKiB(long pid) throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status")))
            if (l.startsWith("VmRSS:")) return Long.parseLong(l.replaceAll("\\D+", ""));
        return -1;
    }

    static JsonNode run(TestServer s, String image, String command, boolean networked) {
        return run(s, image, command, networked, false);
    }

    static JsonNode run(TestServer s, String image, String command, boolean networked, boolean shell) {
        String[] argv = command.split(" ");
        StringBuilder args = new StringBuilder();
        for (int i = 1; i < argv.length; i++) args.append(i > 1 ? "," : "").append(NetworkingTestBase.quote(argv[i]));
        String body = "{\"image\":\"" + image + "\",\"command\":" + NetworkingTestBase.quote(argv[0]) + ",\"args\":[" + args + "],\"shell\":" + shell
                + ",\"disposable\":true,\"timeout\":120,\"networking\":{\"enabled\":" + networked + "}}";
        String op = s.start(s.tokenA, "/v1/instances", body);
        while (true) {
            JsonNode j = s.get(s.tokenA, "/v1/operations/" + op).json();
            String st = j.get("status").asText();
            if (st.equals("SUCCESS")) return j;
            if (st.equals("FAILED") || st.equals("CANCELLED")) throw new IllegalStateException("run failed: " + j);
            try {
                Thread.sleep(POLL_MS);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    static double between(Instant a, Instant b) {
        return Duration.between(a, b).toNanos() / 1e6;
    }

    static double median(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        Collections.sort(s);
        int k = s.size();
        return k % 2 == 1 ? s.get(k / 2) : (s.get(k / 2 - 1) + s.get(k / 2)) / 2;
    }

    static double p90(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        Collections.sort(s);
        return s.get(Math.min(s.size() - 1, (int) Math.ceil(s.size() * 0.9) - 1));
    }

    static String fmt(List<Double> v) {
        return v.stream().map(d -> String.format(Locale.ROOT, "%.3f", d)).toList().toString();
    }

    static String version(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).lines().findFirst().orElse("?");
            p.waitFor();
            return out.strip();
        } catch (Exception e) {
            return "?";
        }
    }
}

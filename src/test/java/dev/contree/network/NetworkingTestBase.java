package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Built-in networking ({@code --network on}) end to end, per runtime: a test-made remote host ({@link RemoteHost})
 * whose range the policy allows (but one address of it denied), reached by address and by name; nothing reached
 * without networking; no way between two networked sandboxes, to the host's loopback, the API, the host's own
 * addresses, the metadata address or a denied range; the policy out of the sandbox's reach; and nothing left behind.
 * Everything stays on this machine: the listeners bind loopback or the test's own addresses.
 */
abstract class NetworkingTestBase {
    static final ObjectMapper JSON = new ObjectMapper();
    static TestServer s;
    static String image;
    static RemoteHost remote;
    static String runtime;

    static void start(String runtimeName, int subnet) throws Exception {
        runtime = runtimeName;
        remote = RemoteHost.start(subnet, 0);
        s = TestServer.inTempDir("net-" + runtimeName, c -> c.withRuntime(runtimeName, "ptrace").withNetwork(policy(remote)));
        image = s.importBusybox(null);
    }

    /** The remote's range allowed, its .3 denied, its DNS server the resolver. */
    static NetworkSettings policy(RemoteHost r) {
        return NetworkSettings.on(List.of("10.231." + r.subnet + ".0/24"), List.of(r.denied + "/32"), List.of(r.allowed));
    }

    @AfterAll
    static void stop() throws Exception {
        if (s != null) s.close();
        if (remote != null) remote.close();
    }

    // ------------------------------------------------------------------ helpers

    static JsonNode exec(String script, boolean networked) {
        return exec(script, networked, true, 30);
    }

    static JsonNode exec(String script, boolean networked, boolean disposable, int timeout) {
        return s.await(s.tokenA, spawn(script, networked, disposable, timeout), Duration.ofSeconds(120));
    }

    static String spawn(String script, boolean networked, boolean disposable, int timeout) {
        String body = "{\"image\":\"" + image + "\",\"command\":" + quote(script) + ",\"shell\":true,\"disposable\":" + disposable
                + ",\"timeout\":" + timeout + ",\"networking\":{\"enabled\":" + networked + "}}";
        return s.start(s.tokenA, "/v1/instances", body);
    }

    static String quote(String v) {
        return "\"" + v.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    static String stdout(JsonNode op) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("metadata").get("result").get("stdout").get("value").asText();
    }

    static JsonNode resources(JsonNode op) {
        return op.get("metadata").get("result").get("resources");
    }

    /** The events of an operation, replayed (SSE {@code data:} lines). */
    static List<JsonNode> events(String op) throws IOException {
        return eventsOf(s, op);
    }

    static List<JsonNode> eventsOf(TestServer s, String op) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : s.get(s.tokenA, "/v1/operations/" + op + "/events").text().split("\n"))
            if (line.startsWith("data:")) out.add(JSON.readTree(line.substring(5).strip()));
        return out;
    }

    /** A TCP listener on the test's side that counts connections. */
    static final class Listener implements AutoCloseable {
        final ServerSocket socket;
        final AtomicInteger accepted = new AtomicInteger();

        Listener(String address) throws IOException {
            socket = new ServerSocket(0, 50, InetAddress.getByName(address));
            Thread.ofVirtual().start(() -> {
                while (!socket.isClosed()) {
                    try (Socket c = socket.accept()) {
                        accepted.incrementAndGet();
                        c.getOutputStream().write("pong\n".getBytes(StandardCharsets.US_ASCII));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int port() { return socket.getLocalPort(); }

        @Override public void close() throws IOException { socket.close(); }
    }

    // ------------------------------------------------------------------ tests

    @Test
    void downloadsFromTheRemoteByAddressAndByName() throws Exception {
        int before = remote.requests().size();
        String op = spawn("cat /etc/resolv.conf; timeout 10 wget -q -O - " + remote.url(remote.allowed, "hello.txt") + " && timeout 10 wget -q -O - "
                + remote.url(RemoteHost.NAME, "hello.txt") + "; echo rc=$?", true, false, 30);
        JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(120));
        String out = stdout(done);
        assertThat(out).contains("nameserver 10.0.2.3");
        assertThat(out.split(RemoteHost.MARKER, -1)).as(out).hasSize(3);
        assertThat(out).contains("rc=0");
        assertThat(remote.requests().subList(before, remote.requests().size()))
                .containsExactly(remote.allowed + " /hello.txt", remote.allowed + " /hello.txt");
        // The interface counted the traffic; the spawn event says how the sandbox was connected.
        assertThat(resources(done).get("network_bytes_received").asLong()).isGreaterThan(200);
        assertThat(resources(done).get("network_bytes_sent").asLong()).isGreaterThan(100);
        assertThat(resources(done).get("network_uplink_cpu_ms").asLong()).as(resources(done).toString()).isNotNegative(); // its cgroup's
        JsonNode spawn = events(op).stream().filter(e -> e.get("type").asText().equals("spawn")).findFirst().orElseThrow();
        assertThat(spawn.get("data").get("network").asText()).isEqualTo("slirp4netns");
        // The resolv.conf mount left no trace: the run changed nothing, so its result is the input image.
        assertThat(done.get("result").get("image").asText()).isEqualTo(image);
    }

    @Test
    void subprocessesOfALiveNetworkedInstanceShareItsNetwork() throws Exception {
        String op = spawn("echo up; sleep 60", true, true, 120);
        awaitOutput(op, "up", Duration.ofSeconds(60));
        TestServer.Reply r = s.json(s.tokenA, "POST", "/v1/operations/" + op + "/subprocesses",
                "{\"command\":" + quote("timeout 10 wget -q -O - " + remote.url(RemoteHost.NAME, "hello.txt")) + ",\"shell\":true}");
        assertThat(r.status()).as(r.text()).isEqualTo(200);
        int spid = r.json().get("spid").asInt();
        JsonNode sub = null;
        for (int i = 0; i < 300; i++) {
            sub = s.get(s.tokenA, "/v1/operations/" + op + "/subprocesses/" + spid).json();
            if (sub.get("state").get("exit_code").asInt() != -1 || sub.get("state").get("signal").asInt() != -1) break;
            Thread.sleep(50);
        }
        assertThat(sub.get("state").get("exit_code").asInt()).as(sub.toString()).isZero();
        assertThat(sub.get("stdout").get("value").asText()).contains(RemoteHost.MARKER);
        JsonNode spawn = events(op).stream().filter(e -> e.get("type").asText().equals("spawn") && e.get("spid").asInt() == spid)
                .findFirst().orElseThrow();
        assertThat(spawn.get("data").get("network").asText()).isEqualTo("slirp4netns");
        assertThat(s.delete(s.tokenA, "/v1/operations/" + op).status()).isEqualTo(202);
        assertThat(s.await(s.tokenA, op, Duration.ofSeconds(60)).get("status").asText()).isEqualTo("CANCELLED");
    }

    /** An entry of {@code dir} in an image, as the inspect API lists it. */
    static JsonNode entry(String imageUuid, String dir, String name) {
        for (JsonNode f : s.get(s.tokenA, "/v1/inspect/" + imageUuid + "/list?path=" + dir).json().get("files"))
            if (f.get("path").asText().equals(name) || f.get("path").asText().endsWith("/" + name)) return f;
        return null;
    }

    @Test
    void theImagesOwnResolvConfIsNeverTouched() throws Exception {
        // An image with its own resolv.conf, and one where it is a symlink to a host path (an image is hostile).
        JsonNode own = exec("echo 'nameserver 9.9.9.9' > /etc/resolv.conf", false, false, 30);
        String withFile = own.get("result").get("image").asText();
        JsonNode linked = exec("ln -s /etc/shadow /etc/resolv.conf", false, false, 30);
        String withLink = linked.get("result").get("image").asText();
        for (String base : List.of(withFile, withLink)) {
            String body = "{\"image\":\"" + base + "\",\"command\":" + quote("cat /etc/resolv.conf; echo x > /etc/resolv.conf; echo write rc=$?;"
                    + " echo kept > /kept") + ",\"shell\":true,\"timeout\":30,\"networking\":{\"enabled\":true}}";
            JsonNode done = s.await(s.tokenA, s.start(s.tokenA, "/v1/instances", body), Duration.ofSeconds(120));
            String out = stdout(done);
            assertThat(out).contains("nameserver 10.0.2.3").doesNotContain("9.9.9.9").doesNotContain("write rc=0");
            String child = done.get("result").get("image").asText();
            assertThat(child).isNotEqualTo(base);
            assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/kept").text()).isEqualTo("kept\n");
            JsonNode resolv = entry(child, "/etc", "resolv.conf");
            if (base.equals(withFile)) {
                assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/etc/resolv.conf").text()).isEqualTo("nameserver 9.9.9.9\n");
            } else {
                assertThat(resolv.get("is_symlink").asBoolean()).as(resolv.toString()).isTrue();
                assertThat(resolv.get("symlink_to").asText()).isEqualTo("/etc/shadow");
            }
        }
    }

    @Test
    void withoutNetworkingNothingGoesOut() throws Exception {
        int before = remote.requests().size();
        JsonNode done = exec("cat /proc/net/dev; timeout 3 wget -q -O - " + remote.url(remote.allowed, "hello.txt") + "; echo rc=$?", false);
        String out = stdout(done);
        assertThat(out).doesNotContain(RemoteHost.MARKER).doesNotContain("eth0").doesNotContain("rc=0");
        assertThat(remote.requests()).hasSize(before);
        assertThat(resources(done).has("network_bytes_received")).isFalse(); // no network, no counts
        String op = spawn("true", false, true, 10);
        s.await(s.tokenA, op, Duration.ofSeconds(60));
        JsonNode spawn = events(op).stream().filter(e -> e.get("type").asText().equals("spawn")).findFirst().orElseThrow();
        assertThat(spawn.get("data").has("network")).as(spawn.toString()).isFalse();
    }

    @Test
    void twoNetworkedSandboxesCannotReachEachOther() throws Exception {
        // A listens on every address it has and says which; B, running meanwhile, tries them all and the usual suspects.
        String a = spawn("nc -l -p 7777 > /tmp/got 2>&1 & sleep 0.5; ip -4 -o addr; echo listening; sleep 10; kill %1 2>/dev/null;"
                + " echo got=$(wc -c < /tmp/got)", true, true, 30);
        String addresses = awaitOutput(a, "listening", Duration.ofSeconds(60));
        // Nothing inbound: A's listener made no listening socket on the host (no port is ever forwarded).
        assertThat(hostListenersOfUplinks()).as("host-side listeners of uplink uids").isEmpty();
        List<String> targets = new ArrayList<>(List.of("10.0.2.2", "10.0.2.3", "10.0.2.15", remote.hostEnd));
        Matcher m = Pattern.compile("inet (\\d+\\.\\d+\\.\\d+\\.\\d+)").matcher(addresses);
        while (m.find()) if (!m.group(1).startsWith("127.")) targets.add(m.group(1));
        assertThat(targets).as(addresses).contains("10.0.2.100");
        StringBuilder script = new StringBuilder();
        for (String t : targets) script.append("echo hello | nc -w 2 ").append(t).append(" 7777; echo ").append(t).append(" rc=$?; ");
        String b = stdout(exec(script.toString(), true));
        JsonNode aDone = s.await(s.tokenA, a, Duration.ofSeconds(60));
        assertThat(stdout(aDone)).as("A's listener got nothing while B tried " + targets + ": " + b).contains("got=0");
    }

    /** Listening TCP sockets on the host owned by this server's uplink uids (a port forwarded in would be one). */
    static List<String> hostListenersOfUplinks() throws IOException {
        UidBlock block = UidBlock.claimedBy(s.dataDir);
        List<String> out = new ArrayList<>();
        for (String table : List.of("tcp", "tcp6")) {
            List<String> lines = Files.readAllLines(Path.of("/proc/net", table));
            for (String line : lines.subList(1, lines.size())) {
                String[] f = line.strip().split("\\s+");
                if (f[3].equals("0A") && block.contains(Long.parseLong(f[7]))) out.add(table + " " + f[1]);
            }
        }
        return out;
    }

    /** The stdout events of a running operation until one contains {@code marker}; their text. */
    static String awaitOutput(String op, String marker, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            StringBuilder out = new StringBuilder();
            for (JsonNode e : events(op))
                if (e.get("type").asText().equals("stdout")) out.append(e.get("data").get("value").asText());
            if (out.toString().contains(marker)) return out.toString();
            Thread.sleep(100);
        }
        throw new AssertionError("no '" + marker + "' from " + op);
    }

    @Test
    void noWayToTheHostItsApiTheMetadataAddressOrADeniedRange() throws Exception {
        int before = remote.requests().size();
        try (Listener loopback = new Listener("127.0.0.1"); Listener hostAddress = new Listener(remote.hostEnd)) {
            int api = s.server.port();
            List<String> targets = List.of(
                    "127.0.0.1:" + loopback.port(), "10.0.2.2:" + loopback.port(), remote.hostEnd + ":" + hostAddress.port(),
                    "10.0.2.2:" + api, "127.0.0.1:" + api, remote.hostEnd + ":" + api,
                    RemoteHost.METADATA + ":8000", RemoteHost.METADATA + ":80", remote.denied + ":8000", RemoteHost.DENIED_NAME + ":8000");
            StringBuilder script = new StringBuilder();
            for (String t : targets) script.append("timeout 5 wget -q -O - http://").append(t).append("/hello.txt; echo ").append(t).append(" rc=$?; ");
            script.append("timeout 5 wget -q -O - ").append(remote.url(remote.allowed, "hello.txt")).append("; echo control rc=$?");
            String out = stdout(exec(script.toString(), true));
            for (String t : targets) assertThat(out).as(out).contains(t + " rc=1");
            assertThat(out).contains("control rc=0").contains(RemoteHost.MARKER);
            assertThat(out.split(RemoteHost.MARKER, -1)).as(out).hasSize(2); // only the control got through
            assertThat(loopback.accepted.get()).isZero();
            assertThat(hostAddress.accepted.get()).isZero();
            assertThat(remote.requests().subList(before, remote.requests().size())).containsExactly(remote.allowed + " /hello.txt");
            // The host itself reaches both listeners and the remote's denied address: the sandbox's failures are the policy's.
            try (Socket c = new Socket(remote.hostEnd, hostAddress.port())) {
                assertThat(c.getInputStream().read()).isEqualTo('p');
            }
            try (Socket c = new Socket(remote.denied, 8000)) {
                assertThat(c.isConnected()).isTrue();
            }
        }
    }

    @Test
    void theSandboxCannotChangeItsNetworkNorBecomeItsUplink() {
        // An uplink uid would own the user namespace of the sandbox's network namespace: every capability over it.
        long low = UidBlock.BASE + 5, high = UidBlock.BASE + 0x3FFFFFF;
        String out = stdout(exec("ip route del default; echo route rc=$?; ip addr add 10.9.9.9/32 dev lo; echo addr rc=$?;"
                + " ip link set eth0 down; echo link rc=$?;"
                + " echo 'low:x:" + low + ":0::/:/bin/sh' >> /etc/passwd; echo 'high:x:" + high + ":0::/:/bin/sh' >> /etc/passwd;"
                + " echo 'other:x:4242:0::/:/bin/sh' >> /etc/passwd;"
                + " su -s /bin/sh low -c 'id -u'; echo setuid rc=$?; su -s /bin/sh high -c 'id -u'; echo setuid-top rc=$?;"
                + " su -s /bin/sh other -c 'id -u'; echo other rc=$?;"
                + " timeout 5 wget -q -O - " + remote.url(remote.allowed, "hello.txt"), true));
        assertThat(out).as(out).contains("route rc=2", "addr rc=2", "link rc=2", "setuid rc=1", "setuid-top rc=1", "4242", "other rc=0");
        assertThat(out).contains(RemoteHost.MARKER); // and the network still works
    }

    /** Live processes of the server's uplink uids (a zombie is gone but for the entry its new parent reaps). */
    static List<Long> uplinkProcesses(Path dataDir) throws IOException {
        UidBlock block = UidBlock.claimedBy(dataDir);
        List<Long> out = new ArrayList<>();
        try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                if (!p.getFileName().toString().chars().allMatch(Character::isDigit)) continue;
                if (block.contains(SlirpNetworks.liveUidOf(p))) out.add(Long.parseLong(p.getFileName().toString()));
            }
        }
        return out;
    }

    /** This server's uplink cgroup directories under {@code parent} in the cpu, cpuacct, memory and pids hierarchies. */
    /** This server's uplink cgroup directories under {@code parent} in the cpu, cpuacct, memory and pids hierarchies. */
    static List<Path> uplinkCgroups(Path dataDir, String parent) throws Exception {
        UidBlock block = UidBlock.claimedBy(dataDir);
        List<Path> out = new ArrayList<>();
        for (String c : UplinkCgroups.CONTROLLERS) {
            Path p = Path.of("/sys/fs/cgroup", c, parent);
            if (!Files.isDirectory(p)) continue;
            try (var s = Files.list(p)) {
                for (Path d : (Iterable<Path>) s::iterator) {
                    String n = d.getFileName().toString();
                    if (n.startsWith(UplinkCgroups.PREFIX) && block != null
                            && block.contains(Long.parseLong(n.substring(UplinkCgroups.PREFIX.length())))) out.add(d);
                }
            }
        }
        return out;
    }

    /** The cgroup the test servers' sandboxes and uplinks are under. */
    static final String PARENT = "contree";

    /** Everything of the host a sandbox's network could leave behind, as text to compare. */
    static String hostState(Path dataDir) throws Exception {
        StringBuilder b = new StringBuilder();
        b.append("uplink processes: ").append(uplinkProcesses(dataDir)).append('\n');
        b.append("uplink cgroups: ").append(uplinkCgroups(dataDir, PARENT)).append('\n');
        b.append("links: ").append(command("ip", "-o", "link", "show").replaceAll("\\\\\\s+", " ").lines()
                .map(l -> l.split(":")[1].strip()).sorted().toList()).append('\n');
        b.append("nsfs mounts: ").append(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().filter(l -> l.contains(" nsfs ")).count()).append('\n');
        long netFds = 0;
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    if (Files.readSymbolicLink(fd).toString().startsWith("net:")) netFds++;
                } catch (IOException ignored) {
                }
            }
        }
        b.append("netns fds: ").append(netFds).append('\n');
        String table = Firewall.tableName(UidBlock.claimedBy(dataDir));
        b.append("nft: ").append(Firewall.list(table)).append('\n');
        b.append("contree nft tables: ").append(command("nft", "list", "tables").lines().filter(l -> l.endsWith(" " + table)).count());
        return b.toString();
    }

    static String command(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        return out;
    }

    @Test
    void nothingIsLeftAfterFiftyRunsACancelAndATimeout() throws Exception {
        String clean = hostState(s.dataDir);
        assertThat(clean).contains("uplink processes: []");
        List<String> ops = new ArrayList<>();
        for (int i = 0; i < 50; i++) ops.add(spawn(i % 10 == 0 ? "wget -q -O /dev/null " + remote.url(remote.allowed, "hello.txt") : "true", true, true, 30));
        for (String op : ops) {
            JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(300));
            assertThat(done.get("status").asText()).as(done.toString()).isEqualTo("SUCCESS");
        }

        String cancelled = spawn("echo up; sleep 60", true, true, 120);
        awaitOutput(cancelled, "up", Duration.ofSeconds(60));
        assertThat(uplinkProcesses(s.dataDir)).as("a running sandbox's uplink").isNotEmpty();
        int uplinks = 0;
        for (long pid : uplinkProcesses(s.dataDir)) {
            if (!Files.readString(Path.of("/proc/" + pid + "/comm")).strip().equals("slirp4netns")) continue;
            uplinks++;
            String limits = Files.readString(Path.of("/proc/" + pid + "/limits"));
            assertThat(limits).containsPattern("Max open files\\s+4096\\s+4096").containsPattern("Max processes\\s+16\\s+16")
                    .containsPattern("Max address space\\s+536870912\\s+536870912");
            String status = Files.readString(Path.of("/proc/" + pid + "/status"));
            assertThat(status).containsPattern("CapEff:\\s+0000000000000400").containsPattern("NoNewPrivs:\\s+1").containsPattern("Seccomp:\\s+2");
        }
        assertThat(uplinks).as("the running sandbox's slirp4netns, confined").isEqualTo(1);
        // Holder and slirp4netns in the uplink's own cgroup beside the sandbox's, with the limits (the sandbox has 1 CPU).
        List<Path> groups = uplinkCgroups(s.dataDir, PARENT);
        for (int i = 0; i < 200 && groups.size() != 4; i++) { // the earlier runs' uplinks are removed in the background
            Thread.sleep(100);
            groups = uplinkCgroups(s.dataDir, PARENT);
        }
        assertThat(groups).as("one uplink's cgroup in cpu, cpuacct, memory, pids").hasSize(4);
        String group = "/" + PARENT + "/" + groups.getFirst().getFileName();
        for (long pid : uplinkProcesses(s.dataDir)) {
            Map<String, String> cg = UplinkCgroupTest.cgroupsOf(pid);
            for (String c : UplinkCgroups.CONTROLLERS) assertThat(cg.get(c)).as(pid + " in " + c + ": " + cg).isEqualTo(group);
        }
        assertThat(UplinkCgroupTest.read("cpu", group, "cpu.cfs_quota_us")).isEqualTo("100000");
        assertThat(UplinkCgroupTest.read("memory", group, "memory.limit_in_bytes")).isEqualTo(Long.toString(64L << 20));
        assertThat(UplinkCgroupTest.read("pids", group, "pids.max")).isEqualTo("16");
        assertThat(s.delete(s.tokenA, "/v1/operations/" + cancelled).status()).isEqualTo(202);
        assertThat(s.await(s.tokenA, cancelled, Duration.ofSeconds(60)).get("status").asText()).isEqualTo("CANCELLED");

        JsonNode timedOut = exec("sleep 60", true, true, 2);
        assertThat(timedOut.get("metadata").get("result").get("state").get("timed_out").asBoolean()).isTrue();

        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        String now = hostState(s.dataDir);
        while (!now.equals(clean) && System.nanoTime() < deadline) { // a cancelled run's cleanup ends after its operation
            Thread.sleep(200);
            now = hostState(s.dataDir);
        }
        assertThat(now).isEqualTo(clean);
    }
}

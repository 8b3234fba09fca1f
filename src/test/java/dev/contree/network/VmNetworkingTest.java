package dev.contree.network;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static dev.contree.network.NetworkingTestBase.eventsOf;
import static dev.contree.network.NetworkingTestBase.quote;
import static dev.contree.network.NetworkingTestBase.uplinkProcesses;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Networking on the vm runtime end to end ({@code --runtime vm --network on}): QEMU runs as an uplink uid, so the
 * same nft egress policy as for runc/runsc's slirp4netns filters every connection its libslirp makes for the guest.
 * Three guest boots, one at a time (TCG: seconds each): a networked run that reaches the test's remote by address
 * and by name and nothing of the host, the metadata address or a denied range; a run without networking (no
 * eth0) that gives the image its own resolv.conf; a networked run over that image, which sees the server's and
 * leaves the image's as it was. Opt-in like the other microVM tests: CONTREE_VM_TESTS=1.
 */
class VmNetworkingTest {
    static TestServer s;
    static RemoteHost remote;
    static String image;

    @BeforeAll
    static void start() throws Exception {
        Assumptions.assumeTrue("true".equals(System.getProperty("contree.vm.tests")) || "1".equals(System.getenv("CONTREE_VM_TESTS")),
                "microVM tests are opt-in: CONTREE_VM_TESTS=1");
        Assumptions.assumeTrue("root".equals(System.getProperty("user.name")), "needs root");
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/busybox")), "busybox-static missing");
        remote = RemoteHost.start(48, 0);
        s = TestServer.inTempDir("net-vm", c -> c.withRuntime("vm", "ptrace").withNetwork(NetworkingTestBase.policy(remote)));
        // One kernel download for every microVM test (the runtime fetches its guest assets at the first run).
        Path shared = Path.of(System.getProperty("java.io.tmpdir"), "contree-vm-test-cache");
        Files.createDirectories(shared);
        Path cache = s.dataDir.resolve("runtime").resolve("vm-cache");
        if (!Files.exists(cache)) Files.createSymbolicLink(cache, shared);
        image = s.importBusybox(null);
    }

    @AfterAll
    static void stop() throws Exception {
        if (s != null) s.close();
        if (remote != null) remote.close();
    }

    static JsonNode await(String op) {
        return s.await(s.tokenA, op, Duration.ofSeconds(240));
    }

    static String spawn(String base, String script, boolean networked) {
        return s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":" + quote(script)
                + ",\"shell\":true,\"timeout\":120,\"networking\":{\"enabled\":" + networked + "}}");
    }

    static String stdout(JsonNode op) {
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        return op.get("metadata").get("result").get("stdout").get("value").asText();
    }

    /** Waits (bounded) until no process of the server's uplink uids is left: QEMU's is gone with its VM. */
    static void assertNoUplinkProcesses() throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        List<Long> left = uplinkProcesses(s.dataDir);
        while (!left.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(100);
            left = uplinkProcesses(s.dataDir);
        }
        assertThat(left).as("live processes of the uplink uid block").isEmpty();
    }

    @Test
    void aNetworkedGuestReachesTheRemoteButNotTheHostTheMetadataAddressOrADeniedRange() throws Exception {
        int before = remote.requests().size();
        try (NetworkingTestBase.Listener loopback = new NetworkingTestBase.Listener("127.0.0.1");
             NetworkingTestBase.Listener hostAddress = new NetworkingTestBase.Listener(remote.hostEnd)) {
            int api = s.server.port();
            // 10.0.2.2 is libslirp's alias for the host's loopback: refused like every local address.
            List<String> refused = List.of("10.0.2.2:" + loopback.port(), remote.hostEnd + ":" + hostAddress.port(),
                    "10.0.2.2:" + api, remote.hostEnd + ":" + api, RemoteHost.METADATA + ":8000", RemoteHost.METADATA + ":80",
                    remote.denied + ":8000", RemoteHost.DENIED_NAME + ":8000");
            StringBuilder script = new StringBuilder("cat /etc/resolv.conf; ls /sys/class/net | tr '\\n' ' '; echo;"
                    + " timeout 30 wget -q -O - " + remote.url(remote.allowed, "hello.txt") + "; echo byaddress rc=$?;"
                    + " timeout 30 wget -q -O - " + remote.url(RemoteHost.NAME, "hello.txt") + "; echo byname rc=$?;");
            // One line per target, wget's error included: refused at once, not an HTTP error of something that answered.
            for (String t : refused)
                script.append(" echo \"").append(t).append(": $(timeout 15 wget -q -O - http://").append(t).append("/hello.txt 2>&1; echo rc=$?)\";");
            String op = spawn(image, script.toString(), true);

            // While it runs: QEMU is a process of the uplink block, confined (its seccomp filter is on once it has parsed
            // its options), with the policy's resolvers as its resolv.conf.
            String seen = null;
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while ((seen == null || !seen.contains("seccomp=2")) && System.nanoTime() < deadline) {
                for (long pid : uplinkProcesses(s.dataDir)) {
                    try {
                        String comm = Files.readString(Path.of("/proc/" + pid + "/comm")).strip();
                        if (!comm.startsWith("qemu-system")) continue;
                        String status = Files.readString(Path.of("/proc/" + pid + "/status"));
                        String resolv = Files.readString(Path.of("/proc/" + pid + "/root/etc/resolv.conf"), StandardCharsets.UTF_8);
                        String limits = Files.readString(Path.of("/proc/" + pid + "/limits"));
                        seen = comm + " files=" + limits.lines().filter(l -> l.startsWith("Max open files")).findFirst().orElse("?")
                                .replaceAll("\\s+", " ") + " seccomp=" + status.lines().filter(l -> l.startsWith("Seccomp:")).findFirst().orElse("?")
                                .substring(8).strip() + " nnp=" + status.contains("NoNewPrivs:\t1")
                                + " resolv=" + resolv.lines().filter(l -> l.startsWith("nameserver")).toList();
                    } catch (java.io.IOException | RuntimeException e) {
                        // exited meanwhile, or not yet past its setpriv: look again
                    }
                }
                Thread.sleep(5);
            }
            assertThat(seen).as("QEMU as an uplink uid while the guest runs").isNotNull()
                    .contains("seccomp=2", "nnp=true", "files=Max open files 4352 4352 files", "resolv=[nameserver " + remote.allowed + "]");

            JsonNode done = await(op);
            String out = stdout(done);
            assertThat(out).as(out).startsWith("nameserver 10.0.2.3\n").contains("byaddress rc=0", "byname rc=0");
            assertThat(out.lines().skip(1).findFirst().orElse("")).as(out).contains("eth0").contains("lo");
            for (String t : refused)
                assertThat(out).as(out).containsPattern("(?m)^" + java.util.regex.Pattern.quote(t) + ": wget: can't connect to remote host \\([0-9.]+\\): Connection refused\nrc=1$");
            assertThat(out.split(RemoteHost.MARKER, -1)).as(out).hasSize(3); // only the two allowed downloads got through
            assertThat(loopback.accepted.get()).isZero();
            assertThat(hostAddress.accepted.get()).isZero();
            // The host itself reaches its listeners and the remote's denied address: the guest's failures are the policy's.
            for (var target : List.of(new java.net.InetSocketAddress("127.0.0.1", loopback.port()),
                    new java.net.InetSocketAddress(remote.hostEnd, hostAddress.port()), new java.net.InetSocketAddress(remote.denied, 8000))) {
                try (java.net.Socket c = new java.net.Socket()) {
                    c.connect(target, 10_000);
                    assertThat(c.isConnected()).as(target.toString()).isTrue();
                }
            }
            assertThat(remote.requests().subList(before, remote.requests().size()))
                    .containsExactly(remote.allowed + " /hello.txt", remote.allowed + " /hello.txt");

            JsonNode resources = done.get("metadata").get("result").get("resources");
            assertThat(resources.get("network_bytes_received").asLong()).as(resources.toString()).isGreaterThan(200);
            assertThat(resources.get("network_bytes_sent").asLong()).as(resources.toString()).isGreaterThan(100);
            JsonNode spawnEvent = eventsOf(s, op).stream().filter(e -> e.get("type").asText().equals("spawn")).findFirst().orElseThrow();
            assertThat(spawnEvent.get("data").get("network").asText()).isEqualTo("libslirp");
            // The resolv.conf mount point the guest needed (busybox has none) left no trace: the image is unchanged.
            assertThat(done.get("result").get("image").asText()).isEqualTo(image);
        }
        assertNoUplinkProcesses();
    }

    @Test
    void withoutNetworkingNoEth0AndANetworkedRunLeavesTheImagesResolvConf() throws Exception {
        String plainOp = spawn(image, "ls /sys/class/net | tr '\\n' ' '; echo; echo 'nameserver 9.9.9.9' > /etc/resolv.conf", false);
        JsonNode plain = await(plainOp);
        assertThat(stdout(plain).strip()).as("the interfaces of a guest without networking").isEqualTo("lo");
        JsonNode spawnEvent = eventsOf(s, plainOp).stream().filter(e -> e.get("type").asText().equals("spawn"))
                .findFirst().orElseThrow();
        assertThat(spawnEvent.get("data").has("network")).as(spawnEvent.toString()).isFalse();
        assertThat(plain.get("metadata").get("result").get("resources").has("network_bytes_sent")).isFalse();
        String withOwn = plain.get("result").get("image").asText();

        JsonNode done = await(spawn(withOwn, "cat /etc/resolv.conf; echo x > /etc/resolv.conf; echo write rc=$?; echo kept > /kept", true));
        String out = stdout(done);
        assertThat(out).as(out).startsWith("nameserver 10.0.2.3\n").doesNotContain("9.9.9.9").contains("write rc=1");
        String child = done.get("result").get("image").asText();
        assertThat(child).isNotEqualTo(withOwn);
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/kept").text()).isEqualTo("kept\n");
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/etc/resolv.conf").text()).isEqualTo("nameserver 9.9.9.9\n");
        assertNoUplinkProcesses();
    }

    /** Live processes of {@code block}'s uids, as "pid comm". */
    static List<String> processesOf(UidBlock block) throws java.io.IOException {
        List<String> out = new java.util.ArrayList<>();
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path p : (Iterable<Path>) procs::iterator) {
                if (!p.getFileName().toString().chars().allMatch(Character::isDigit) || !block.contains(SlirpNetworks.liveUidOf(p))) continue;
                try {
                    out.add(p.getFileName() + " " + Files.readString(p.resolve("comm")).strip());
                } catch (java.io.IOException e) {
                    // exited meanwhile
                }
            }
        }
        return out;
    }

    @Test
    void theUplinkUidGoesBackWhenAVmIsCancelledWhileItBoots() throws Exception {
        // The runtime on its own, with a networking of its own (another data dir: another uid block and nft table),
        // so the test sees the pool; a cancel while the guest boots costs a fraction of a boot.
        Path dir = Files.createTempDirectory("contree-vmnet-direct");
        Path state = Files.createDirectories(dir.resolve("state")), rootfs = Files.createDirectories(dir.resolve("rootfs"));
        Files.createSymbolicLink(state.resolve("vm-cache"), Path.of(System.getProperty("java.io.tmpdir"), "contree-vm-test-cache"));
        Files.createDirectories(rootfs.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), rootfs.resolve("bin/busybox"));
        Files.createSymbolicLink(rootfs.resolve("bin/sh"), Path.of("busybox"));
        SlirpNetworks nets = SlirpNetworks.start(NetworkingTestBase.policy(remote), state, dir.resolve("data"), "contree-vmnettest");
        dev.contree.sandbox.SandboxRuntime vm = null;
        try {
            vm = dev.contree.sandbox.SandboxRuntimes.create(new dev.contree.sandbox.RuntimeConfig(
                    dev.contree.sandbox.RuntimeConfig.Kind.VM, null, "ptrace", state, 256L << 20, 256, 1.0, 1 << 20,
                    Duration.ofSeconds(10), "contree-vmnettest", nets, false));
            dev.contree.cancel.CancelToken cancel = new dev.contree.cancel.CancelToken();
            dev.contree.sandbox.SandboxRuntime runtime = vm;
            var spec = dev.contree.sandbox.SandboxSpec.shell("vmnet" + System.nanoTime(), rootfs, "sleep 60")
                    .timeout(Duration.ofSeconds(120)).network(true).build();
            var result = new java.util.concurrent.CompletableFuture<dev.contree.sandbox.SandboxResult>();
            Thread.ofVirtual().start(() -> {
                try {
                    result.complete(runtime.run(spec, null, cancel));
                } catch (Throwable t) {
                    result.completeExceptionally(t);
                }
            });
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            List<String> running = processesOf(nets.uids());
            while (running.stream().noneMatch(p -> p.contains("qemu-system")) && !result.isDone() && System.nanoTime() < deadline) {
                Thread.sleep(5);
                running = processesOf(nets.uids());
            }
            assertThat(running).as("QEMU as an uplink uid").anyMatch(p -> p.contains("qemu-system"));
            assertThat(nets.uidsInUse()).isEqualTo(1);
            cancel.cancel(dev.contree.cancel.CancelToken.Reason.CLIENT_REQUEST);
            var r = result.get(120, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(r.cancelled()).as(r.toString()).isTrue();
            // Released as the run returns (QEMU reaped); a QEMU slow to die under load releases it when it exits.
            long until = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (nets.uidsInUse() != 0 && System.nanoTime() < until) Thread.sleep(50);
            assertThat(nets.uidsInUse()).as("uids lent out after the cancelled run: " + processesOf(nets.uids())).isZero();
            assertThat(processesOf(nets.uids())).isEmpty();
        } finally {
            nets.close();
            if (vm != null) vm.cleanupStale();
            for (String c : List.of("memory", "cpu", "cpuacct", "pids")) Files.deleteIfExists(Path.of("/sys/fs/cgroup", c, "contree-vmnettest"));
            try (var walk = Files.walk(dir)) {
                for (Path f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
            }
        }
    }
}

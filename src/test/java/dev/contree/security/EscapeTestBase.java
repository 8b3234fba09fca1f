package dev.contree.security;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestDirs;
import dev.contree.TestImages;
import dev.contree.TestServer;
import dev.contree.linux.Linux;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

import static dev.contree.security.SecurityTestSupport.q;
import static dev.contree.security.SecurityTestSupport.stream;
import static dev.contree.security.SecurityTestSupport.verdicts;
import static org.assertj.core.api.Assertions.assertThat;

/**
 * Escape attempts from inside a sandbox, through the real API on a real runtime. Every case asserts that the
 * attempt fails inside the sandbox and that the host is unchanged: a canary file in a host temp dir is never
 * read, written or linked; the host's hostname, clock, kernel modules and contree-init binary stay as they
 * were; TCP/UDP listeners the test opens on the host see no traffic. Subclasses pick the runtime.
 */
abstract class EscapeTestBase {
    static TestServer s;
    static Path canaryDir, canary, probe;
    static String base, probeFile, secret, hostIp, hostname, modules, initHash;
    static FileTime canaryMtime;
    static ServerSocket tcpLoopback, tcpHost;
    static DatagramSocket udpHost;
    static final AtomicInteger contacts = new AtomicInteger();

    /** Attack verdicts (names from the script) a runtime may allow because they stay inside its own kernel. */
    abstract Set<String> allowedInsideSandbox();

    static void startServer(String runtime) throws Exception {
        s = TestServer.inTempDir("escape-" + runtime, c -> c.withRuntime(runtime, "ptrace").withLimits(1L << 30, 256L << 20, 4));
        base = s.importBusybox(null);
        probe = SecurityTestSupport.buildProbe(s.tempDir);
        probeFile = s.upload(s.tokenA, Files.readAllBytes(probe)).json().get("uuid").asText();

        canaryDir = Files.createTempDirectory("contree-canary-");
        canary = canaryDir.resolve("canary.txt");
        secret = "CANARY-" + UUID.randomUUID();
        Files.writeString(canary, secret + "\n");
        Files.setPosixFilePermissions(canary, PosixFilePermissions.fromString("rw-rw-rw-"));
        canaryMtime = Files.getLastModifiedTime(canary);
        hostname = Files.readString(Path.of("/proc/sys/kernel/hostname"));
        modules = moduleNames();
        initHash = initBinaryHash();

        hostIp = hostAddress();
        tcpLoopback = listen(InetAddress.getLoopbackAddress());
        tcpHost = listen(InetAddress.getByName(hostIp));
        udpHost = new DatagramSocket(new InetSocketAddress(hostIp, 0));
        Thread.ofVirtual().start(() -> {
            byte[] b = new byte[64];
            while (!udpHost.isClosed()) {
                try {
                    udpHost.receive(new DatagramPacket(b, b.length));
                    contacts.incrementAndGet();
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    @AfterAll
    static void stopServer() throws Exception {
        for (AutoCloseable c : new AutoCloseable[] {tcpLoopback, tcpHost, udpHost}) if (c != null) c.close();
        if (s != null) s.close();
        if (canaryDir != null) TestDirs.removeWithMounts(canaryDir);
    }

    /** After every case: nothing on the host moved. */
    @AfterEach
    void hostUnchanged() throws Exception {
        assertThat(Files.readString(canary)).isEqualTo(secret + "\n");
        assertThat(Files.getLastModifiedTime(canary)).isEqualTo(canaryMtime);
        assertThat(Files.getAttribute(canary, "unix:nlink")).isEqualTo(1);
        try (Stream<Path> l = Files.list(canaryDir)) {
            assertThat(l.map(p -> p.getFileName().toString()).toList()).containsExactly("canary.txt");
        }
        assertThat(Files.readString(Path.of("/proc/sys/kernel/hostname"))).isEqualTo(hostname);
        assertThat(moduleNames()).isEqualTo(modules);
        assertThat(initBinaryHash()).isEqualTo(initHash);
        // The sandbox tried to set the clock to 2000-01-01.
        assertThat(System.currentTimeMillis()).isGreaterThan(1_700_000_000_000L);
        assertThat(contacts.get()).as("connections/datagrams reaching host listeners").isZero();
    }

    // ---------------------------------------------------------------------------------------------------------

    /**
     * One sandbox (A) sleeps with a marker in its argv and a file in /tmp; a second (B) runs every in-sandbox
     * attack of the suite and prints one verdict line per attack. While A runs, the host side of its mount is
     * checked (nosuid, nodev).
     */
    @Test
    void attackScriptFindsNoWayOut() throws Exception {
        attackFromInside(false);
    }

    /** The same attacks from a subprocess of a live instance (forked by contree-init, not by the runtime). */
    @Test
    void attackScriptAsASubprocessFindsNoWayOut() throws Exception {
        attackFromInside(true);
    }

    private void attackFromInside(boolean asSubprocess) throws Exception {
        String marker = "MARKER" + UUID.randomUUID().toString().replace("-", "");
        String a = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":"
                + q("echo " + marker + " > /tmp/a-" + marker + "; echo ready; sleep 120; : " + marker)
                + ",\"shell\":true,\"timeout\":300}");
        awaitOutput(a, "ready");

        // Host side of a running sandbox: its rootfs mount is nosuid+nodev.
        List<String[]> overlays = mountinfo().stream()
                .filter(m -> m[4].startsWith(s.dataDir.toAbsolutePath() + "/") && m[4].contains("/mnt/")).toList();
        assertThat(overlays).as("the running sandbox's overlay mount").isNotEmpty();
        for (String[] m : overlays) assertThat(Set.of(m[5].split(","))).as(String.join(" ", m)).contains("nosuid", "nodev");

        long hostPid = ProcessHandle.current().pid();
        int[] disk = hostDisk();
        int[] loop = layerLoopDevice();
        String script = String.join("\n",
                "p() { n=$1; shift; echo \"V $n $(/probe \"$@\" 2>&1 | tr '\\n' ' ')\"; }",
                "t() { n=$1; shift; o=$(\"$@\" 2>&1); r=$?; o=$(echo \"$o\" | tr '\\n' ' ' | head -c 160);"
                        + " if [ $r = 0 ]; then echo \"V $n OK $o\"; else echo \"V $n ERR rc=$r $o\"; fi; }",
                // reading / writing host files through /proc and chroot tricks
                "t read-proc1-root cat /proc/1/root$CANARY",
                "t read-self-root cat /proc/self/root$CANARY",
                "t read-self-cwd cat /proc/self/cwd/../../../../../../../..$CANARY",
                "t read-dotdot sh -c 'cd / && cat ../../../../../../..$CANARY'",
                "t write-proc1-root sh -c 'echo pwned >> /proc/1/root$CANARY'",
                "hits=0; for f in /proc/[0-9]*/root /proc/[0-9]*/cwd /proc/[0-9]*/fd/* /proc/[0-9]*/map_files/*; do"
                        + " for x in \"$CANARY\" \"/../../../../../../../..$CANARY\"; do"
                        + " if cat \"$f$x\" 2>/dev/null; then hits=$((hits+1)); echo \"leak via $f$x\"; fi; done; done;"
                        + " if [ $hits = 0 ]; then echo 'V read-proc-fd-walk ERR none'; else echo \"V read-proc-fd-walk OK $hits\"; fi",
                "p chroot-escape chroot-escape $CANARY",
                "p overwrite-init-exe writefile /proc/1/exe pwned",
                "p overwrite-init writefile /.contree/init pwned",
                "p remount-init remount-init",
                // mounts and namespaces
                "t mount-tmpfs mount -t tmpfs none /mnt",
                "p mount-syscall mount /mnt",
                "t mount-proc sh -c 'mkdir -p /mnt2 && mount -t proc proc /mnt2'",
                "p unshare-userns userns",
                "p unshare-netns netns",
                "p open-by-handle open_by_handle",
                // devices
                "t mknod-hostdisk mknod /dev/hostdisk b $DISK_MAJ $DISK_MIN",
                "p read-hostdisk readdev /dev/hostdisk",
                "t mknod-layerdisk mknod /dev/layers b $LOOP_MAJ $LOOP_MIN",
                "p read-layerdisk readdev /dev/layers",
                "p read-kvm readdev /dev/kvm",
                "t mknod-kvm mknod /dev/kvm2 c 10 232",
                "p read-kvm-mknod readdev /dev/kvm2",
                "p read-mem readdev /dev/mem",
                "t mknod-mem mknod /dev/mem2 c 1 1",
                "p read-mem-mknod readdev /dev/mem2",
                // other processes
                "p ptrace-host ptrace $HOST_PID",
                "p ptrace-init ptrace 1",
                // patterns go through files so that no process of this script carries them in its own argv
                "printf 'sure%s\\n' fire > /pats; printf -- '--bun%s\\n' dle >> /pats;"
                        + " hits=$(grep -l -f /pats /proc/[0-9]*/cmdline 2>/dev/null | wc -l);"
                        + " if [ $hits = 0 ]; then echo 'V see-host-procs ERR none'; else echo \"V see-host-procs OK $hits\"; fi",
                "printf '%s\\n' \"$MARKER\" > /pats2; hits=$(grep -l -f /pats2 /proc/[0-9]*/cmdline 2>/dev/null | wc -l);"
                        + " if [ $hits = 0 ]; then echo 'V see-other-sandbox-procs ERR none'; else echo \"V see-other-sandbox-procs OK $hits\"; fi",
                // positive control for the two scans above: a process of this sandbox is found the same way
                "(sh -c 'sleep 30; : SELFCHECK' &); sleep 0.3; printf 'SELF%s\\n' CHECK > /pats3;"
                        + " hits=$(grep -l -f /pats3 /proc/[0-9]*/cmdline 2>/dev/null | wc -l); echo \"V control-own-procs-visible $hits\"",
                "t see-other-sandbox-file sh -c 'cat /tmp/a-$MARKER || find / -xdev -name \"a-$MARKER\" | grep .'",
                // /proc/sys, /sys, sysrq
                "p write-proc-sys-hostname writefile /proc/sys/kernel/hostname pwned",
                "p write-proc-sys-drop-caches writefile /proc/sys/vm/drop_caches 1",
                "p write-sysrq writefile /proc/sysrq-trigger h",
                "p write-sys-uevent-helper writefile /sys/kernel/uevent_helper /pwn",
                "p write-sys-cgroup-pids writefile /sys/fs/cgroup/pids/pids.max max",
                "p write-sys-cgroup-mem writefile /sys/fs/cgroup/memory/memory.limit_in_bytes -1",
                "t sysctl-w sysctl -w kernel.hostname=pwned",
                // kernel modules
                "echo junk > /junk.ko",
                "t insmod insmod /junk.ko",
                "t modprobe modprobe xfs",
                "p init-module init_module",
                "p finit-module finit_module /junk.ko",
                // hostname, time
                "t hostname-cmd hostname pwned",
                "p sethostname sethostname pwned",
                "o=$(date -s '2000-01-01 00:00:00' 2>&1); case \"$o\" in *\"can't set\"*) echo \"V date-set ERR $o\";;"
                        + " *) echo \"V date-set OK $o\";; esac",
                "p settimeofday settimeofday",
                "p clock-settime clock_settime",
                // network is off
                "p tcp-host-loopback connect 127.0.0.1 $TCP_LO",
                "p tcp-host-ip connect $HOST_IP $TCP_HOST",
                "p udp-host-ip udp $HOST_IP $UDP_HOST",
                "t ping ping -c 1 -W 1 $HOST_IP",
                "t wget wget -q -T 2 -O - http://$HOST_IP:$TCP_HOST/",
                "p raw-socket raw",
                "p packet-socket packet",
                "t net-ifaces sh -c 'ls /sys/class/net | grep -v ^lo$'",
                // misc kernel attack surface
                "p keyctl keyctl",
                "p bpf bpf",
                "echo 'V end'");
        String env = "{\"CANARY\":" + q(canary.toString()) + ",\"MARKER\":\"" + marker + "\",\"HOST_PID\":\"" + hostPid
                + "\",\"DISK_MAJ\":\"" + disk[0] + "\",\"DISK_MIN\":\"" + disk[1] + "\",\"LOOP_MAJ\":\"" + loop[0]
                + "\",\"LOOP_MIN\":\"" + loop[1] + "\",\"HOST_IP\":\"" + hostIp + "\",\"TCP_LO\":\"" + tcpLoopback.getLocalPort()
                + "\",\"TCP_HOST\":\"" + tcpHost.getLocalPort() + "\",\"UDP_HOST\":\"" + udpHost.getLocalPort() + "\"}";
        String files = "{\"/probe\":{\"uuid\":\"" + probeFile + "\",\"mode\":\"0755\"}}";
        String out, err;
        if (asSubprocess) {
            String parent = s.start(s.tokenA, "/v1/instances", "{\"image\":\"" + base + "\",\"command\":\"echo up; sleep 280\","
                    + "\"shell\":true,\"disposable\":true,\"timeout\":300,\"files\":" + files + "}");
            awaitOutput(parent, "up");
            TestServer.Reply created = s.json(s.tokenA, "POST", "/v1/operations/" + parent + "/subprocesses",
                    "{\"command\":" + q(script) + ",\"shell\":true,\"timeout\":240,\"env\":" + env + "}");
            assertThat(created.status()).as(created.text()).isEqualTo(200);
            int spid = created.json().get("spid").asInt();
            JsonNode sub = awaitSubprocess(parent, spid, Duration.ofSeconds(300));
            out = text(sub.get("stdout"));
            err = text(sub.get("stderr"));
            assertThat(s.get(s.tokenA, "/v1/operations/" + parent).json().get("status").asText())
                    .as("the parent survives its subprocess's attacks").isEqualTo("EXECUTING");
            assertThat(s.delete(s.tokenA, "/v1/operations/" + parent).status()).isEqualTo(202);
            s.await(s.tokenA, parent, Duration.ofSeconds(30));
        } else {
            JsonNode b = SecurityTestSupport.run(s, "{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,"
                    + "\"disposable\":true,\"timeout\":240,\"env\":" + env + ",\"files\":" + files + "}", Duration.ofSeconds(300));
            assertThat(b.get("status").asText()).as(b.toString()).isEqualTo("SUCCESS");
            out = stream(b, "stdout");
            err = stream(b, "stderr");
        }
        assertThat(out + err).doesNotContain(secret);
        Map<String, String> v = verdicts(out);
        System.out.println(getClass().getSimpleName() + (asSubprocess ? " subprocess" : "") + " verdicts:");
        v.forEach((k, r) -> System.out.println("  " + k + " -> " + r));
        assertThat(v).as(out + "\n" + err).containsKey("end");
        assertThat(v.size()).as("every attack printed a verdict").isGreaterThanOrEqualTo(58);
        assertThat(Integer.parseInt(v.get("control-own-procs-visible"))).isPositive();
        List<String> escaped = new ArrayList<>();
        v.forEach((name, result) -> {
            if (name.equals("end") || name.startsWith("control-") || result.startsWith("ERR")) return;
            if (name.startsWith("mknod-")) return; // creating a node is harmless; opening it is what counts
            if (allowedInsideSandbox().contains(name)) return;
            escaped.add(name + " -> " + result);
        });
        assertThat(escaped).as("attacks that were not refused").isEmpty();

        // A is untouched by B: still running, its file intact; then cancel it.
        JsonNode aNow = s.get(s.tokenA, "/v1/operations/" + a).json();
        assertThat(aNow.get("status").asText()).isEqualTo("EXECUTING");
        assertThat(s.delete(s.tokenA, "/v1/operations/" + a).status()).isEqualTo(202);
        assertThat(s.await(s.tokenA, a, Duration.ofSeconds(30)).get("status").asText()).isEqualTo("CANCELLED");
        // CANCELLED is recorded at once; the sandbox is torn down by the time the completion event is logged.
        assertThat(s.get(s.tokenA, "/v1/operations/" + a + "/events?follow=1").text()).contains("event: completion");
        AbuseTestBase.assertNothingLeft(marker, a);
    }

    /** Polls a subprocess's folded record until it ended. */
    static JsonNode awaitSubprocess(String op, int spid, Duration timeout) throws InterruptedException {
        return awaitSubprocess(s, op, spid, timeout);
    }

    static JsonNode awaitSubprocess(TestServer s, String op, int spid, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            TestServer.Reply r = s.get(s.tokenA, "/v1/operations/" + op + "/subprocesses/" + spid);
            assertThat(r.status()).as(r.text()).isEqualTo(200);
            JsonNode state = r.json().get("state");
            if (state.get("exit_code").asInt() != -1 || state.get("signal").asInt() != -1) return r.json();
            Thread.sleep(200);
        }
        throw new AssertionError("subprocess " + spid + " of " + op + " did not end");
    }

    static String text(JsonNode repr) {
        String v = repr.get("value").asText();
        return repr.get("encoding").asText().equals("base64")
                ? new String(java.util.Base64.getDecoder().decode(v), java.nio.charset.StandardCharsets.UTF_8) : v;
    }

    /**
     * Symlinks planted in the image (by the archive, and by an earlier run) that point at host paths: files
     * injected at those paths land inside the image, never on the host.
     */
    @Test
    void plantedSymlinksNeverRedirectInjectedFiles() throws Exception {
        String hostile = s.importRootfs(s.tokenA, busyboxWith(tar -> {
            symlink(tar, "etc/evil", canary.toString());
            symlink(tar, "etc/evildir", canaryDir.toString());
            symlink(tar, "etc/up", "../../../../../../../../../.." + canaryDir);
        }), null);
        // A run plants more: an absolute and a relative link to host paths, and a link chain.
        JsonNode plant = SecurityTestSupport.run(s, "{\"image\":\"" + hostile + "\",\"command\":" + q(
                "ln -s " + canaryDir + " /work; ln -s " + canary + " /etc/target; ln -s /etc/evildir /etc/chain;"
                        + " cat /etc/evil /etc/evildir/canary.txt /etc/up/canary.txt; true") + ",\"shell\":true}",
                Duration.ofSeconds(120));
        assertThat(plant.get("status").asText()).as(plant.toString()).isEqualTo("SUCCESS");
        assertThat(stream(plant, "stdout") + stream(plant, "stderr")).doesNotContain(secret);
        String planted = plant.get("result").get("image").asText();

        String payload = s.upload(s.tokenA, "INJECTED\n".getBytes()).json().get("uuid").asText();
        // Files whose final component is a planted symlink: the link is replaced by the file, inside the image.
        JsonNode replace = SecurityTestSupport.run(s, "{\"image\":\"" + planted + "\",\"command\":"
                + q("for f in /etc/evil /etc/target; do [ -L $f ] && echo link $f; cat $f; done") + ",\"shell\":true,"
                + "\"files\":{\"/etc/evil\":{\"uuid\":\"" + payload + "\"},\"/etc/target\":{\"uuid\":\"" + payload + "\"}}}",
                Duration.ofSeconds(120));
        assertThat(replace.get("status").asText()).as(replace.toString()).isEqualTo("SUCCESS");
        assertThat(stream(replace, "stdout")).isEqualTo("INJECTED\nINJECTED\n");
        String child = replace.get("result").get("image").asText();
        assertThat(s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/etc/evil").text()).isEqualTo("INJECTED\n");

        // Files below a planted directory symlink: resolved inside the image (where the host path does not
        // exist) or refused; either way nothing appears on the host.
        for (String path : List.of("/etc/evildir/injected", "/etc/up/injected", "/work/injected", "/etc/chain/injected")) {
            var r = s.json(s.tokenA, "POST", "/v1/instances", "{\"image\":\"" + planted + "\",\"command\":"
                    + q("cat " + path) + ",\"shell\":true,\"files\":{" + q(path) + ":{\"uuid\":\"" + payload + "\"}}}");
            if (r.status() != 202) {
                assertThat(r.status()).as(path + ": " + r.text()).isBetween(400, 499);
                continue;
            }
            JsonNode op = s.await(s.tokenA, r.json().get("uuid").asText(), Duration.ofSeconds(120));
            if (op.get("status").asText().equals("SUCCESS")) {
                assertThat(stream(op, "stdout")).as(path).isEqualTo("INJECTED\n");
            } else {
                assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("FAILED");
                // a clear message in image terms, without the host's data dir path
                assertThat(op.get("error").asText()).contains("symlink").doesNotContain(s.dataDir.toString());
            }
        }
    }

    /** An image whose /tmp is a symlink to a host dir: runsc's /tmp bind mount must not follow it. */
    @Test
    void tmpSymlinkIsNeverBindMounted() throws Exception {
        String hostile = s.importRootfs(s.tokenA, busyboxWith(tar -> {}, "tmp/", tar -> symlink(tar, "tmp", canaryDir.toString())), null);
        JsonNode op = SecurityTestSupport.run(s, "{\"image\":\"" + hostile + "\",\"command\":"
                + q("cat /tmp/canary.txt; echo pwned > /tmp/pwned; echo pwned >> /tmp/canary.txt; ls /tmp/; true")
                + ",\"shell\":true,\"disposable\":true}", Duration.ofSeconds(120));
        assertThat(stream(op, "stdout") + stream(op, "stderr")).doesNotContain(secret);
        // Either refused (runsc: infra error) or the link resolved inside the image (runc).
        assertThat(op.get("status").asText()).isIn("SUCCESS", "FAILED");
    }

    /** Archive hard links and PAX xattrs cannot reach outside the layer or set overlay semantics. */
    @Test
    void archiveLinksAndOverlayXattrsCannotEscape() throws Exception {
        for (String target : List.of("../../../../../../../.." + canary, canary.toString())) {
            byte[] tar = busyboxWith(t -> hardlink(t, "etc/hl", target));
            String file = s.upload(s.tokenA, tar).json().get("uuid").asText();
            String op = s.start(s.tokenA, "/v1/images/import", "{\"registry\":{\"url\":\"rootfs+file://" + file + "\"}}");
            JsonNode done = s.await(s.tokenA, op, Duration.ofSeconds(60));
            assertThat(done.get("status").asText()).as(target + ": " + done).isEqualTo("FAILED");
        }
        String img = s.importRootfs(s.tokenA, busyboxWith(t -> {
            TarArchiveEntry d = new TarArchiveEntry("hidden/");
            d.setMode(040755);
            d.addPaxHeader("SCHILY.xattr.trusted.overlay.redirect", "/etc");
            d.addPaxHeader("SCHILY.xattr.trusted.overlay.opaque", "y");
            d.addPaxHeader("SCHILY.xattr.trusted.overlay.metacopy", "");
            d.addPaxHeader("SCHILY.xattr.user.kept", "yes");
            put(t, d, null);
        }), null);
        JsonNode op = SecurityTestSupport.run(s, "{\"image\":\"" + img + "\",\"command\":\"ls /hidden | wc -l\",\"shell\":true,"
                + "\"disposable\":true}", Duration.ofSeconds(120));
        assertThat(stream(op, "stdout").strip()).isEqualTo("0");
        assertNoForbiddenOverlayXattrs();
    }

    /**
     * A sandbox creates a setuid root shell, device nodes and overlay xattrs in its committed layer. On the
     * host these stay inert: the data dir is 0700, the layer filesystem is mounted nosuid+nodev, inspection
     * never opens a device, and no overlay xattr other than the kernel's own bookkeeping lands in a layer.
     */
    @Test
    void committedLayersStayInertOnTheHost() throws Exception {
        int[] disk = hostDisk();
        String script = String.join("\n",
                "p() { n=$1; shift; echo \"V $n $(/probe \"$@\" 2>&1 | tr '\\n' ' ')\"; }",
                "cp /bin/busybox /suid-sh && chmod 4755 /suid-sh && ls -l /suid-sh",
                "mknod /rootdisk b " + disk[0] + " " + disk[1] + " && echo made-node",
                "p read-rootdisk readdev /rootdisk",
                "mkdir -p /xd/sub && echo f > /xd/f && echo g > /etc/g",
                "p xattr-opaque setxattr /xd trusted.overlay.opaque y",
                "p xattr-redirect setxattr /xd/sub trusted.overlay.redirect /etc",
                "p xattr-metacopy setxattr /xd/f trusted.overlay.metacopy x",
                "p xattr-origin setxattr /etc/g trusted.overlay.origin x",
                "p xattr-trusted-other setxattr /xd/f trusted.pwn x",
                "p xattr-security-capability setxattr /suid-sh security.capability x",
                "rm /probe",
                "echo 'V end'");
        JsonNode op = SecurityTestSupport.run(s, "{\"image\":\"" + base + "\",\"command\":" + q(script) + ",\"shell\":true,"
                + "\"files\":{\"/probe\":{\"uuid\":\"" + probeFile + "\",\"mode\":\"0755\"}}}", Duration.ofSeconds(120));
        assertThat(op.get("status").asText()).as(op.toString()).isEqualTo("SUCCESS");
        Map<String, String> v = verdicts(stream(op, "stdout"));
        System.out.println(getClass().getSimpleName() + " layer verdicts: " + v + "\nstderr: " + stream(op, "stderr"));
        assertThat(v).containsKey("end");
        v.forEach((name, result) -> {
            if (!name.equals("end") && !allowedInsideSandbox().contains(name))
                assertThat(result).as(name).startsWith("ERR");
        });
        String child = op.get("result").get("image").asText();

        // The data dir is private and the layer filesystem is mounted nosuid,nodev.
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(s.dataDir))).isEqualTo("rwx------");
        Path layersRoot = s.dataDir.toAbsolutePath().resolve("layers");
        String[] storeMount = mountinfo().stream().filter(m -> m[4].equals(layersRoot.toString())).findFirst().orElseThrow();
        assertThat(Set.of(storeMount[5].split(","))).as(String.join(" ", storeMount)).contains("nosuid", "nodev");

        // The setuid file is in a layer on the host, with its bit, but cannot run with privileges there.
        Path suid = findInLayers("suid-sh");
        assertThat(suid).isNotNull();
        // Inspection does not open device nodes.
        if (stream(op, "stdout").contains("made-node")) {
            var dl = s.get(s.tokenA, "/v1/inspect/" + child + "/download?path=/rootdisk");
            assertThat(dl.status()).as(dl.text()).isBetween(400, 499);
            var grep = s.get(s.tokenA, "/v1/inspect/" + child + "/grep?path=/&pattern=a");
            assertThat(grep.status()).isLessThan(500);
        }
        assertNoForbiddenOverlayXattrs();
    }

    // ---------------------------------------------------------------------------------------------------------

    /** Every entry of every committed layer: only the kernel's own copy-up bookkeeping and opaque markers. */
    static void assertNoForbiddenOverlayXattrs() throws IOException {
        Path layers = s.dataDir.toAbsolutePath().resolve("layers/layers");
        List<String> bad = new ArrayList<>();
        try (Stream<Path> walk = Files.walk(layers)) {
            for (Path p : walk.toList()) {
                for (String x : Linux.llistxattr(p)) {
                    if (!x.startsWith("trusted.")) continue;
                    boolean ok = x.equals("trusted.overlay.origin") || x.equals("trusted.overlay.impure")
                            || (x.equals("trusted.overlay.opaque") && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS));
                    if (!ok) bad.add(p + " " + x);
                }
            }
        }
        assertThat(bad).isEmpty();
    }

    static Path findInLayers(String name) throws IOException {
        try (Stream<Path> walk = Files.walk(s.dataDir.toAbsolutePath().resolve("layers/layers"), 3)) {
            return walk.filter(p -> p.getFileName().toString().equals(name)).findFirst().orElse(null);
        }
    }

    static void awaitOutput(String op, String text) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            String events = s.get(s.tokenA, "/v1/operations/" + op + "/events?follow=false").text();
            if (events.contains(text)) return;
            JsonNode now = s.get(s.tokenA, "/v1/operations/" + op).json();
            if (!now.get("status").asText().matches("PENDING|ASSIGNED|EXECUTING")) throw new AssertionError("ended: " + now);
            Thread.sleep(100);
        }
        throw new AssertionError("no '" + text + "' from " + op);
    }

    static List<String[]> mountinfo() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().map(l -> l.split(" ")).toList();
    }

    /** major/minor of a real host disk (first non-loop, non-ram block device), else 8:0. */
    static int[] hostDisk() throws IOException {
        try (Stream<Path> l = Files.list(Path.of("/sys/block"))) {
            for (Path p : l.sorted().toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith("loop") || n.startsWith("ram") || n.startsWith("zram")) continue;
                String[] mm = Files.readString(p.resolve("dev")).strip().split(":");
                return new int[] {Integer.parseInt(mm[0]), Integer.parseInt(mm[1])};
            }
        }
        return new int[] {8, 0};
    }

    /** major/minor of the block device holding the layer store (the loop device of its btrfs image). */
    static int[] layerLoopDevice() throws IOException {
        String root = s.dataDir.toAbsolutePath().resolve("layers").toString();
        for (String[] m : mountinfo()) {
            if (m[4].equals(root)) {
                String[] mm = m[2].split(":");
                // btrfs reports an anonymous st_dev in mountinfo; the real device is the mount source
                for (int i = 0; i < m.length; i++) {
                    if (m[i].equals("-") && m[i + 2].startsWith("/dev/loop")) {
                        String loop = m[i + 2].substring("/dev/".length());
                        mm = Files.readString(Path.of("/sys/block", loop, "dev")).strip().split(":");
                    }
                }
                return new int[] {Integer.parseInt(mm[0]), Integer.parseInt(mm[1])};
            }
        }
        return new int[] {7, 0};
    }

    static String hostAddress() throws IOException {
        for (NetworkInterface ni : NetworkInterface.networkInterfaces().toList()) {
            if (!ni.isUp() || ni.isLoopback()) continue;
            for (InetAddress ad : ni.inetAddresses().toList()) if (ad instanceof Inet4Address) return ad.getHostAddress();
        }
        throw new IllegalStateException("no non-loopback IPv4 address on this host");
    }

    static ServerSocket listen(InetAddress addr) throws IOException {
        ServerSocket ss = new ServerSocket(0, 50, addr);
        Thread.ofVirtual().start(() -> {
            while (!ss.isClosed()) {
                try (Socket c = ss.accept()) {
                    contacts.incrementAndGet();
                } catch (IOException e) {
                    return;
                }
            }
        });
        return ss;
    }

    /** Loaded kernel modules ("" on a kernel built without module support, like this build machine's). */
    static String moduleNames() throws IOException {
        if (!Files.exists(Path.of("/proc/modules"))) return "";
        return String.join(",", Files.readAllLines(Path.of("/proc/modules")).stream().map(l -> l.split(" ")[0]).sorted().toList());
    }

    static String initBinaryHash() throws Exception {
        Path rt = s.dataDir.toAbsolutePath().resolve("runtime");
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (Stream<Path> l = Files.list(rt)) {
            for (Path p : l.filter(p -> p.getFileName().toString().startsWith("contree-init")).sorted().toList())
                md.update(Files.readAllBytes(p));
        }
        return HexFormat.of().formatHex(md.digest());
    }

    // tarball helpers ------------------------------------------------------------------------------------------

    interface TarEdit {
        void apply(TarArchiveOutputStream tar) throws IOException;
    }

    static byte[] busyboxWith(TarEdit extra) throws Exception {
        return busyboxWith(extra, null, null);
    }

    /** The busybox test rootfs, optionally without entry {@code drop}, plus {@code extra} (and {@code replace}). */
    static byte[] busyboxWith(TarEdit extra, String drop, TarEdit replace) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (TarArchiveInputStream in = new TarArchiveInputStream(new GZIPInputStream(new ByteArrayInputStream(TestImages.busyboxRootfs())));
             TarArchiveOutputStream out = new TarArchiveOutputStream(new GZIPOutputStream(buf))) {
            out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
            TarArchiveEntry e;
            while ((e = in.getNextEntry()) != null) {
                if (e.getName().equals(drop)) continue;
                out.putArchiveEntry(e);
                if (e.isFile()) in.transferTo(out);
                out.closeArchiveEntry();
            }
            extra.apply(out);
            if (replace != null) replace.apply(out);
        }
        return buf.toByteArray();
    }

    static void symlink(TarArchiveOutputStream tar, String name, String target) throws IOException {
        TarArchiveEntry l = new TarArchiveEntry(name, TarArchiveEntry.LF_SYMLINK);
        l.setLinkName(target);
        put(tar, l, null);
    }

    static void hardlink(TarArchiveOutputStream tar, String name, String target) throws IOException {
        TarArchiveEntry l = new TarArchiveEntry(name, TarArchiveEntry.LF_LINK);
        l.setLinkName(target);
        put(tar, l, null);
    }

    static void put(TarArchiveOutputStream tar, TarArchiveEntry e, byte[] content) throws IOException {
        if (content != null) e.setSize(content.length);
        tar.putArchiveEntry(e);
        if (content != null) tar.write(content);
        tar.closeArchiveEntry();
    }
}

package dev.contree.linux;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * This JVM as the child subreaper: orphans of its children's process trees are re-parented to it and reaped by
 * the sweep, adopted ones by their pidfd, and neither ever takes a child the JDK or {@link SpawnedProcess} waits for.
 */
class ReaperTest {
    static final int SELF = (int) ProcessHandle.current().pid();
    static final long GRACE_MS = TimeUnit.NANOSECONDS.toMillis(Reaper.ORPHAN_GRACE_NANOS);

    @BeforeAll
    static void subreaper() throws IOException {
        Reaper.becomeSubreaper();
        Reaper.becomeSubreaper(); // idempotent
        assertThat(Reaper.isSubreaper()).isTrue();
    }

    /** The first line of a child's stdout: the pid of the grandchild it left behind. */
    static int firstLineAsPid(Process p) throws IOException {
        BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        return Integer.parseInt(r.readLine().strip());
    }

    static int ppid(int pid) throws IOException {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        return Integer.parseInt(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[1]);
    }

    static boolean gone(int pid) { return !Files.exists(Path.of("/proc/" + pid)); }

    static void awaitGone(int pid, long ms) throws InterruptedException {
        long end = System.currentTimeMillis() + ms;
        while (!gone(pid) && System.currentTimeMillis() < end) Thread.sleep(100);
        assertThat(gone(pid)).as("pid %d reaped", pid).isTrue();
    }

    @Test
    void orphansOfDoubleForkingTreesAreReapedAndTheirParentsKeepTheirStatus() throws Exception {
        long before = Reaper.orphansReaped();
        // Each parent leaves a grandchild behind and exits with its own status.
        Process jdk = new ProcessBuilder("sh", "-c", "sleep 2 & echo $!; exit 7").start();
        SpawnedProcess spawned = SpawnedProcess.start(List.of("sh", "-c", "(sleep 2; exit 4) & echo $!; exit 9"), Path.of("/"),
                SpawnedProcess.Stderr.DISCARD);
        int g1 = firstLineAsPid(jdk), g2 = firstLineAsPid(spawned);
        assertThat(jdk.waitFor()).isEqualTo(7);
        assertThat(spawned.waitFor()).isEqualTo(9);
        // Re-parented to us, not to PID 1.
        assertThat(ppid(g1)).isEqualTo(SELF);
        assertThat(ppid(g2)).isEqualTo(SELF);
        // Once they exit they are our zombies for the grace period, then the sweep reaps them.
        long end = System.currentTimeMillis() + 10_000;
        while ((Reaper.zombieChild(g1) == null || Reaper.zombieChild(g2) == null) && System.currentTimeMillis() < end) Thread.sleep(50);
        assertThat(Reaper.zombieChild(g1)).isNotNull();
        assertThat(Reaper.zombieChild(g2)).isNotNull();
        awaitGone(g1, GRACE_MS + 5000);
        awaitGone(g2, GRACE_MS + 5000);
        assertThat(Reaper.orphansReaped() - before).isGreaterThanOrEqualTo(2);
    }

    /** A sweep running flat out while children of the JDK and of SpawnedProcess come and go takes none of them. */
    @Test
    void aBusySweepNeverTakesAnotherReapersChild() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        Thread sweeper = Thread.ofPlatform().start(() -> {
            while (!stop.get()) {
                try { Reaper.sweep(); } catch (IOException e) { throw new AssertionError(e); }
            }
        });
        try (ExecutorService ex = Executors.newFixedThreadPool(8)) {
            List<Future<int[]>> fs = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                int code = i % 50 + 1;
                boolean jdk = i % 2 == 0;
                fs.add(ex.submit(() -> {
                    Process p = jdk ? new ProcessBuilder("sh", "-c", "exit " + code).start()
                            : SpawnedProcess.start(List.of("sh", "-c", "exit " + code), Path.of("/"), SpawnedProcess.Stderr.DISCARD);
                    return new int[] {code, p.waitFor()};
                }));
            }
            for (Future<int[]> f : fs) {
                int[] r = f.get(60, TimeUnit.SECONDS);
                assertThat(r[1]).isEqualTo(r[0]);
            }
        } finally {
            stop.set(true);
            sweeper.join();
        }
    }

    @Test
    void anAdoptedOrphanReportsHowItEnded() throws Exception {
        // Exits by itself with a status.
        SpawnedProcess p = SpawnedProcess.start(List.of("sh", "-c", "(sleep 0.5; exit 4) & echo $!"), Path.of("/"), SpawnedProcess.Stderr.DISCARD);
        int pid = firstLineAsPid(p);
        assertThat(p.waitFor()).isZero();
        AdoptedChild c = Reaper.adopt(pid);
        assertThat(c.pid()).isEqualTo(pid);
        Linux.ChildStatus s = c.onExit().get(10, TimeUnit.SECONDS);
        assertThat(s.signaled()).isFalse();
        assertThat(s.exitValue()).isEqualTo(4);
        assertThat(c.isAlive()).isFalse();
        assertThat(gone(pid)).isTrue();

        // Killed through its pidfd; a signal after the reap is a no-op.
        p = SpawnedProcess.start(List.of("sh", "-c", "sleep 60 & echo $!"), Path.of("/"), SpawnedProcess.Stderr.DISCARD);
        pid = firstLineAsPid(p);
        p.waitFor();
        c = Reaper.adopt(pid);
        assertThat(c.onExit().isDone()).isFalse();
        c.signal(Linux.SIGKILL);
        s = c.onExit().get(10, TimeUnit.SECONDS);
        assertThat(s.signaled()).isTrue();
        assertThat(s.value()).isEqualTo(9);
        assertThat(s.exitValue()).isEqualTo(137);
        c.signal(Linux.SIGKILL);

        // Already a zombie when adopted: it died while its parent (exec'd into a sleep that never waits) lived.
        p = SpawnedProcess.start(List.of("sh", "-c", "(sleep 0.2; exit 6) & echo $!; exec sleep 0.8"), Path.of("/"),
                SpawnedProcess.Stderr.DISCARD);
        pid = firstLineAsPid(p);
        p.waitFor();
        assertThat(Reaper.zombieChild(pid)).isNotNull();
        c = Reaper.adopt(pid);
        assertThat(c.onExit().get(10, TimeUnit.SECONDS).exitValue()).isEqualTo(6);
    }

    @Test
    void onlyOurOwnChildrenCanBeAdopted() throws Exception {
        assertThatThrownBy(() -> Reaper.adopt(1)).isInstanceOf(IOException.class).hasMessageContaining("not a child of ours");
        int parent = (int) ProcessHandle.current().parent().orElseThrow().pid();
        assertThatThrownBy(() -> Reaper.adopt(parent)).isInstanceOf(IOException.class).hasMessageContaining("not a child of ours");
        assertThatThrownBy(() -> Reaper.adopt(SELF)).isInstanceOf(IOException.class);
        assertThatThrownBy(() -> Reaper.adopt(4_000_000)).isInstanceOf(IOException.class); // no such process
    }
}

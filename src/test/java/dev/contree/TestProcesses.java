package dev.contree;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** The host's process table as /proc shows it, for tests and benchmarks that check what runs beside a sandbox. */
public final class TestProcesses {
    private TestProcesses() {}

    /** One process: its parent, state letter (R, S, Z, …) and the file name of its argv[0]. */
    public record Proc(int pid, int ppid, char state, String argv0) {}

    /** Every process now, by pid (those that exit while the table is read are left out). */
    public static Map<Integer, Proc> all() throws IOException {
        Map<Integer, Proc> all = new HashMap<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.toList()) {
                String n = p.getFileName().toString();
                if (!n.chars().allMatch(Character::isDigit)) continue;
                try {
                    String stat = Files.readString(p.resolve("stat"));
                    String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    String cmd = Files.readString(p.resolve("cmdline")).split("\0", 2)[0];
                    all.put(Integer.parseInt(n), new Proc(Integer.parseInt(n), Integer.parseInt(f[1]), f[0].charAt(0),
                            cmd.substring(cmd.lastIndexOf('/') + 1)));
                } catch (IOException | RuntimeException gone) {
                    // exited meanwhile
                }
            }
        }
        return all;
    }

    /** Every process under {@code root} (its children, theirs, …), parents before their children; never root itself. */
    public static List<Proc> descendants(long root) throws IOException {
        Map<Integer, List<Proc>> children = new HashMap<>();
        for (Proc p : all().values()) children.computeIfAbsent(p.ppid(), k -> new ArrayList<>()).add(p);
        List<Proc> out = new ArrayList<>();
        List<Proc> todo = new ArrayList<>(children.getOrDefault((int) root, List.of()));
        while (!todo.isEmpty()) {
            Proc p = todo.removeFirst();
            out.add(p);
            todo.addAll(children.getOrDefault(p.pid(), List.of()));
        }
        return out;
    }
}

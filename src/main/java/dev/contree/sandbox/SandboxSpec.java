package dev.contree.sandbox;

import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What to run.
 *
 * @param id          unique among concurrent runs: [A-Za-z0-9_.-]{1,64}; becomes part of the container id
 * @param rootfs      root filesystem directory on the host (writes land there)
 * @param argv        command; argv[0] is passed as given
 * @param lookupPath  resolve argv[0] through PATH (of {@code env}, else a default) when it has no '/'
 * @param env         the command's complete environment
 * @param cwd         working directory; created (root-owned, 0755) if missing; null = "/"
 * @param stdin       bytes fed to the command's stdin, then closed; null = empty
 * @param stdinFile   if set, fed to stdin (streamed, after {@code stdin}) instead of being held in memory
 * @param timeout     wall-clock limit of the command; null or zero = none
 * @param network     give the sandbox network access (needs {@link RuntimeConfig#networkNamespace()})
 * @param memoryBytes memory limit; 0 = runtime default; negative = none
 * @param pidsLimit   max processes; 0 = runtime default; negative = none
 * @param cpus        CPU quota in CPUs; 0 = runtime default; negative = none
 * @param outputCap   bytes kept per stream (rest counted and dropped); 0 = runtime default
 * @param keepStdinOpen after {@code stdin}/{@code stdinFile}, keep the main process's stdin open until
 *                    {@link LiveSandbox#writeStdin} closes it (default: closed after them)
 */
public record SandboxSpec(String id, Path rootfs, List<String> argv, boolean lookupPath, Map<String, String> env,
                          String cwd, int uid, int gid, String hostname, byte[] stdin, Duration timeout,
                          boolean network, long memoryBytes, long pidsLimit, double cpus, long outputCap,
                          Path stdinFile, boolean keepStdinOpen) {

    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_.-]{1,64}");

    public SandboxSpec {
        Objects.requireNonNull(id, "id");
        if (!ID.matcher(id).matches()) throw new IllegalArgumentException("bad sandbox id: " + id);
        Objects.requireNonNull(rootfs, "rootfs");
        argv = List.copyOf(argv);
        if (argv.isEmpty() || argv.getFirst().isEmpty()) throw new IllegalArgumentException("empty argv");
        env = env == null ? Map.of() : Map.copyOf(env);
        if (cwd == null || cwd.isEmpty()) cwd = "/";
        if (!cwd.startsWith("/")) throw new IllegalArgumentException("cwd must be absolute: " + cwd);
        if (uid < 0 || gid < 0) throw new IllegalArgumentException("negative uid/gid");
        if (hostname == null || hostname.isEmpty()) hostname = "linuxkit";
        if (stdin == null) stdin = new byte[0];
        for (String a : argv) if (a.indexOf('\0') >= 0) throw new IllegalArgumentException("NUL in argv");
        for (var e : env.entrySet())
            if (e.getKey().isEmpty() || e.getKey().indexOf('=') >= 0 || e.getKey().indexOf('\0') >= 0
                    || e.getValue().indexOf('\0') >= 0)
                throw new IllegalArgumentException("bad env entry: " + e.getKey());
    }

    public static Builder builder(String id, Path rootfs, List<String> argv) { return new Builder(id, rootfs, argv); }

    /** Shell form: {@code /bin/sh -c script}. */
    public static Builder shell(String id, Path rootfs, String script) {
        return new Builder(id, rootfs, List.of("/bin/sh", "-c", script));
    }

    public static final class Builder {
        private final String id;
        private final Path rootfs;
        private final List<String> argv;
        private boolean lookupPath = true;
        private final Map<String, String> env = new LinkedHashMap<>(
                Map.of("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
        private String cwd = "/";
        private int uid, gid;
        private String hostname = "linuxkit";
        private byte[] stdin;
        private Path stdinFile;
        private Duration timeout = Duration.ofSeconds(60);
        private boolean network;
        private long memoryBytes, pidsLimit;
        private double cpus;
        private long outputCap;
        private boolean keepStdinOpen;

        private Builder(String id, Path rootfs, List<String> argv) { this.id = id; this.rootfs = rootfs; this.argv = argv; }

        public Builder lookupPath(boolean v) { lookupPath = v; return this; }
        public Builder env(Map<String, String> v) { env.clear(); env.putAll(v); return this; }
        public Builder env(String k, String v) { env.put(k, v); return this; }
        public Builder cwd(String v) { cwd = v; return this; }
        public Builder user(int u, int g) { uid = u; gid = g; return this; }
        public Builder hostname(String v) { hostname = v; return this; }
        public Builder stdin(byte[] v) { stdin = v; return this; }
        public Builder stdinFile(Path v) { stdinFile = v; return this; }
        public Builder timeout(Duration v) { timeout = v; return this; }
        public Builder network(boolean v) { network = v; return this; }
        public Builder memoryBytes(long v) { memoryBytes = v; return this; }
        public Builder pidsLimit(long v) { pidsLimit = v; return this; }
        public Builder cpus(double v) { cpus = v; return this; }
        public Builder outputCap(long v) { outputCap = v; return this; }
        public Builder keepStdinOpen(boolean v) { keepStdinOpen = v; return this; }

        public SandboxSpec build() {
            return new SandboxSpec(id, rootfs, argv, lookupPath, env, cwd, uid, gid, hostname, stdin, timeout, network,
                    memoryBytes, pidsLimit, cpus, outputCap, stdinFile, keepStdinOpen);
        }
    }
}

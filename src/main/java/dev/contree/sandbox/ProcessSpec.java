package dev.contree.sandbox;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * One more process in a running sandbox (spid &gt;= 2), started by contree-init itself (a fork, no runtime exec).
 *
 * @param argv       command; argv[0] is passed as given
 * @param lookupPath resolve argv[0] through the PATH of {@code env} (else a default) when it has no '/'
 * @param env        the process's complete environment
 * @param cwd        working directory; created (root-owned, 0755) if missing; null = "/"
 * @param timeout    wall-clock limit of this process only (SIGKILL to its process group); null or zero = none
 * @param outputCap  bytes kept per stream; 0 = the runtime's default
 */
public record ProcessSpec(List<String> argv, boolean lookupPath, Map<String, String> env, String cwd,
                          int uid, int gid, Duration timeout, long outputCap) {

    public ProcessSpec {
        argv = List.copyOf(argv);
        if (argv.isEmpty() || argv.getFirst().isEmpty()) throw new IllegalArgumentException("empty argv");
        for (String a : argv) if (a.indexOf('\0') >= 0) throw new IllegalArgumentException("NUL in argv");
        env = env == null ? Map.of() : Map.copyOf(env);
        for (var e : env.entrySet())
            if (e.getKey().isEmpty() || e.getKey().indexOf('=') >= 0 || e.getKey().indexOf('\0') >= 0
                    || e.getValue().indexOf('\0') >= 0)
                throw new IllegalArgumentException("bad env entry: " + e.getKey());
        if (cwd == null || cwd.isEmpty()) cwd = "/";
        if (!cwd.startsWith("/")) throw new IllegalArgumentException("cwd must be absolute: " + cwd);
        if (cwd.indexOf('\0') >= 0) throw new IllegalArgumentException("NUL in cwd");
        if (uid < 0 || gid < 0) throw new IllegalArgumentException("negative uid/gid");
        if (timeout != null && timeout.isNegative()) throw new IllegalArgumentException("negative timeout");
        if (outputCap < 0) throw new IllegalArgumentException("negative output cap");
    }

    /** {@code /bin/sh -c script} as root in "/", the given env, no timeout, the default output cap. */
    public static ProcessSpec shell(String script, Map<String, String> env) {
        return new ProcessSpec(List.of("/bin/sh", "-c", script), false, env, "/", 0, 0, null, 0);
    }
}

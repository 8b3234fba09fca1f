package dev.contree.registry;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of an OCI/Docker image config JSON ({@code config} object plus platform) that ConTree cares about.
 * Lists are never null; strings are never null (empty when absent).
 */
public record ImageConfig(List<String> env, String workingDir, String user, List<String> entrypoint, List<String> cmd,
                          String os, String architecture) {
    public ImageConfig {
        env = env == null ? List.of() : List.copyOf(env);
        entrypoint = entrypoint == null ? List.of() : List.copyOf(entrypoint);
        cmd = cmd == null ? List.of() : List.copyOf(cmd);
        workingDir = workingDir == null ? "" : workingDir;
        user = user == null ? "" : user;
        os = os == null ? "" : os;
        architecture = architecture == null ? "" : architecture;
    }

    /** {@code Env} as an ordered map ({@code K=V}; an entry without '=' maps to ""; later duplicates win). */
    public Map<String, String> envMap() {
        Map<String, String> m = new LinkedHashMap<>();
        for (String e : env) {
            int i = e.indexOf('=');
            if (i < 0) m.put(e, "");
            else m.put(e.substring(0, i), e.substring(i + 1));
        }
        return m;
    }
}

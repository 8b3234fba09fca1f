package dev.contree.images;

import java.util.LinkedHashMap;
import java.util.Map;

/** Execution defaults kept with an image: environment, working directory and user (from OCI config or preserve_env). */
public record ImageConfig(Map<String, String> env, String workingDir, String user) {
    public static final ImageConfig EMPTY = new ImageConfig(Map.of(), "", "");

    public ImageConfig {
        env = env == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(env));
        workingDir = workingDir == null ? "" : workingDir;
        user = user == null ? "" : user;
    }
}

package dev.contree.sandbox;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/** One more process in a running sandbox (spid >= 2). */
public record ProcessSpec(List<String> argv, boolean lookupPath, Map<String, String> env, String cwd,
                          int uid, int gid, Duration timeout, long outputCap) {}

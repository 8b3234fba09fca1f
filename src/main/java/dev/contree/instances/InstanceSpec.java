package dev.contree.instances;

import java.util.List;
import java.util.Map;

/**
 * A validated execution request with every default filled in.
 *
 * @param imageRef    what the client sent: an image UUID or {@code tag:NAME}
 * @param env         variables to set over the image's env; a null value unsets a variable
 * @param cwd         working directory; empty = the image's default
 * @param stdin       bytes fed to the process, then closed
 * @param files       absolute path in the sandbox → file to place there before the command starts
 * @param maxLayerBytes cap on the bytes the sandbox may write
 * @param userGiven   whether the request named uid or gid; if not, the image's USER (if any) applies
 * @param keepStdinOpen the request's stdin said {@code close: false}: the main process's stdin stays open after
 *                    {@code stdin} for writes through {@code /subprocesses/1/stdin}
 */
public record InstanceSpec(String command, String imageRef, boolean shell, List<String> args, Map<String, String> env,
                           boolean preserveEnv, String cwd, String hostname, boolean disposable, byte[] stdin,
                           int timeoutSeconds, long truncateOutputAt, Map<String, FileSpec> files, int uid, int gid,
                           long maxLayerBytes, boolean networking, boolean userGiven, boolean keepStdinOpen) {

    /** A request whose stdin closes after its bytes (every client but a live session's). */
    public InstanceSpec(String command, String imageRef, boolean shell, List<String> args, Map<String, String> env,
                        boolean preserveEnv, String cwd, String hostname, boolean disposable, byte[] stdin,
                        int timeoutSeconds, long truncateOutputAt, Map<String, FileSpec> files, int uid, int gid,
                        long maxLayerBytes, boolean networking, boolean userGiven) {
        this(command, imageRef, shell, args, env, preserveEnv, cwd, hostname, disposable, stdin, timeoutSeconds,
                truncateOutputAt, files, uid, gid, maxLayerBytes, networking, userGiven, false);
    }

    /** A file to inject: the uploaded file, permission bits (no type bits), owner. */
    public record FileSpec(String fileUuid, int mode, int uid, int gid) {}

    public static final int DEFAULT_TIMEOUT = 60;
    public static final long DEFAULT_TRUNCATE = 1 << 20;
    public static final long MAX_TRUNCATE = 10L << 20;
    public static final long DEFAULT_MAX_LAYER_BYTES = 12L << 30;
    /** A client may lower the writable-layer cap, never raise it past this (the hosted API's default). */
    public static final long MAX_LAYER_BYTES = DEFAULT_MAX_LAYER_BYTES;
    public static final String DEFAULT_HOSTNAME = "linuxkit";

    /** The same request without its stdin bytes (they wait in a {@link StdinSpool} file instead). */
    public InstanceSpec withoutStdin() {
        return new InstanceSpec(command, imageRef, shell, args, env, preserveEnv, cwd, hostname, disposable, new byte[0],
                timeoutSeconds, truncateOutputAt, files, uid, gid, maxLayerBytes, networking, userGiven, keepStdinOpen);
    }

    /** The argv to exec: {@code /bin/sh -c command args…} in shell mode. */
    public List<String> argv() {
        if (shell) {
            var out = new java.util.ArrayList<String>(List.of("/bin/sh", "-c", command));
            out.addAll(args);
            return out;
        }
        var out = new java.util.ArrayList<String>(List.of(command));
        out.addAll(args);
        return out;
    }
}

package dev.contree.instances;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A validated request to start one more process in a running instance ({@code ExecSpec} on the wire).
 *
 * @param env            variables set over the instance's environment; a null value unsets one
 * @param cwd            working directory; empty = the instance's
 * @param userGiven      whether uid or gid was named; if not, the instance's identity applies
 * @param stdin          bytes written to the process's stdin first
 * @param closeStdin     close its stdin after {@code stdin}; false keeps it open for later writes
 * @param timeoutSeconds kills only this process when it elapses; 0 = none (the instance's own timeout still applies)
 */
public record SubprocessRequest(String command, boolean shell, List<String> args, Map<String, String> env, String cwd,
                                int uid, int gid, boolean userGiven, byte[] stdin, boolean closeStdin, int timeoutSeconds,
                                long truncateOutputAt) {

    /** The argv to exec: {@code /bin/sh -c command args…} in shell mode, as for an instance. */
    public List<String> argv() {
        List<String> out = new ArrayList<>(shell ? List.of("/bin/sh", "-c", command) : List.of(command));
        out.addAll(args);
        return out;
    }
}

package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

import java.util.Set;

/** Escape suite on gVisor (ptrace platform here): attacks meet the sentry, not the host kernel. */
class RunscEscapeTest extends EscapeTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }

    @Override
    Set<String> allowedInsideSandbox() {
        // gVisor implements user namespaces inside the sentry: the new namespace's capabilities only reach
        // the sentry's own emulated objects, never a host kernel object (no host syscall is made for it).
        return Set.of("unshare-userns");
    }
}

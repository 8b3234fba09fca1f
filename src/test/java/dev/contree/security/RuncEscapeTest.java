package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

import java.util.Set;

/** Escape suite on runc: the host kernel, guarded by namespaces, capabilities, seccomp and the device cgroup. */
class RuncEscapeTest extends EscapeTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }

    @Override
    Set<String> allowedInsideSandbox() {
        return Set.of();
    }
}

package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Host paths behind image and sandbox symlinks, on gVisor. */
class RunscHostPathTest extends HostPathTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }
}

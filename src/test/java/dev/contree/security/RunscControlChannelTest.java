package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Control-channel attacks on gVisor. */
class RunscControlChannelTest extends ControlChannelTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }

    @Override
    boolean initFdsReachable() { return true; }
}

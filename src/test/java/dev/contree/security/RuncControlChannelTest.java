package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Control-channel attacks on runc. */
class RuncControlChannelTest extends ControlChannelTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }

    @Override
    boolean initFdsReachable() { return false; }
}

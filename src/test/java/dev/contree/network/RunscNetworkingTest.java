package dev.contree.network;

import org.junit.jupiter.api.BeforeAll;

/** The same on gVisor (ptrace platform): netstack in the sandbox's own namespace (see {@link RunscNetworking}). */
class RunscNetworkingTest extends NetworkingTestBase {
    @BeforeAll
    static void setUp() throws Exception {
        start("runsc", 42);
    }
}

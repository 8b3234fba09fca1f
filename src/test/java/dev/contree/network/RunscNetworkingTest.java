package dev.contree.network;

import org.junit.jupiter.api.BeforeAll;

class RunscNetworkingTest extends NetworkingTestBase {
    @BeforeAll
    static void setUp() throws Exception {
        start("runsc", 42);
    }
}

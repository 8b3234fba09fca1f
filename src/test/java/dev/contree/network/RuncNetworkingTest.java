package dev.contree.network;

import org.junit.jupiter.api.BeforeAll;

class RuncNetworkingTest extends NetworkingTestBase {
    @BeforeAll
    static void setUp() throws Exception {
        start("runc", 41);
    }
}

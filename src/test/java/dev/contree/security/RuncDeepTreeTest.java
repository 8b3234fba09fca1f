package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Deep and wide trees made by a sandbox, on runc. */
class RuncDeepTreeTest extends DeepTreeTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }
}

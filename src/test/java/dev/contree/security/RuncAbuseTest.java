package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Resource abuse on runc. */
class RuncAbuseTest extends AbuseTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }
}

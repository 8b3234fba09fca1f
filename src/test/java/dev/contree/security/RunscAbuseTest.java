package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Resource abuse on runsc. */
class RunscAbuseTest extends AbuseTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }
}

package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Tenant isolation and server limits on runsc. */
class RunscTenantLimitsTest extends TenantLimitsTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }
}

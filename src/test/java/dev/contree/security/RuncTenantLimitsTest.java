package dev.contree.security;

import org.junit.jupiter.api.BeforeAll;

/** Tenant isolation and server limits on runc. */
class RuncTenantLimitsTest extends TenantLimitsTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }
}

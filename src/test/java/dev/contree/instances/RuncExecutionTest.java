package dev.contree.instances;

import org.junit.jupiter.api.BeforeAll;

/** Executions on runc. */
class RuncExecutionTest extends ExecutionTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runc");
    }

    @Override
    int chainDepth() {
        return 500;
    }
}

package dev.contree.instances;

import org.junit.jupiter.api.BeforeAll;

/** Executions on gVisor (ptrace platform here). */
class RunscExecutionTest extends ExecutionTestBase {
    @BeforeAll
    static void start() throws Exception {
        startServer("runsc");
    }

    @Override
    int chainDepth() {
        return 60;
    }
}

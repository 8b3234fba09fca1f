package dev.contree.network;

class RunscNetworkCrashTest extends NetworkCrashTestBase {
    @Override String runtime() { return "runsc"; }
    @Override int subnet() { return 44; }
}

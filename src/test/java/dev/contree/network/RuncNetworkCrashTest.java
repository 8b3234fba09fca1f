package dev.contree.network;

class RuncNetworkCrashTest extends NetworkCrashTestBase {
    @Override String runtime() { return "runc"; }
    @Override int subnet() { return 43; }
}

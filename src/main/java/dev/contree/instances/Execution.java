package dev.contree.instances;

import dev.contree.files.FileService;
import dev.contree.images.AccountStorage;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layers.LayerStore;
import dev.contree.sandbox.SandboxRuntime;

/** What executions need from the rest of the server. */
record Execution(LayerStore store, SandboxRuntime runtime, LayerIndex layerIndex, LayerLeases leases, FileService files,
                 AccountStorage storage, LiveInstances live) {}

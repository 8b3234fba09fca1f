package dev.contree.server;

import dev.contree.auth.Tokens;
import dev.contree.files.FileService;
import dev.contree.images.ImageService;
import dev.contree.images.LayerGarbageCollector;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.instances.InstanceService;
import dev.contree.layers.LayerStore;
import dev.contree.operations.OperationService;
import dev.contree.operations.Scheduler;

/** The services one server runs, as the command line and tests reach them through {@link ContreeServer#services()}. */
public record Services(ServerConfig config, Tokens tokens, FileService files, ImageService images,
                       OperationService operations, Scheduler scheduler, LayerStore layers, LayerIndex layerIndex,
                       LayerLeases leases, LayerGarbageCollector gc, InstanceService instances,
                       dev.contree.imports.ImportService imports,
                       /** The bucket-wide garbage collection (null without an object store). */
                       dev.contree.objects.BucketGarbageCollector bucketGc) {}

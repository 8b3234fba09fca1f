package dev.contree.api;

import dev.contree.auth.Tokens;
import dev.contree.files.FileService;
import dev.contree.images.ImageFilesystem;
import dev.contree.images.ImageService;
import dev.contree.imports.ImportService;
import dev.contree.instances.InstanceService;
import dev.contree.operations.OperationService;

/** The services the API routes requests to; the server wires them. */
public record ApiServices(Tokens tokens, FileService files, ImageService images, ImageFilesystem imageFiles,
                          OperationService operations, InstanceService instances, ImportService imports) {}

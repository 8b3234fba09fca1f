package dev.contree.server;

import dev.contree.auth.Tokens;
import dev.contree.files.FileService;
import dev.contree.images.ImageService;
import dev.contree.operations.OperationService;

/** The services one server runs, handed to the API layer. */
public record Services(ServerConfig config, Tokens tokens, FileService files, ImageService images,
                       OperationService operations) {}

package dev.contree.server;

import dev.contree.api.ApiServer;
import dev.contree.auth.Tokens;
import dev.contree.files.BlobStore;
import dev.contree.files.FileService;
import dev.contree.images.ImageService;
import dev.contree.operations.OperationService;
import dev.contree.store.Database;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/** One ConTree server: opens the data dir, wires the services, serves the API; {@link #close} shuts down in order. */
public final class ContreeServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ContreeServer.class);

    private final Database db;
    private final Services services;
    private final ApiServer api;

    private ContreeServer(Database db, Services services, ApiServer api) {
        this.db = db;
        this.services = services;
        this.api = api;
    }

    public static ContreeServer start(ServerConfig config) throws IOException {
        Path data = DataDir.prepare(config.dataDir());
        Database db = Database.open(data.resolve("contree.db"));
        try {
            Tokens tokens = new Tokens(db);
            FileService files = new FileService(db, new BlobStore(data.resolve("blobs")), config.maxUploadBytes());
            ImageService images = new ImageService(db);
            OperationService operations = new OperationService(db);
            Services services = new Services(config, tokens, files, images, operations);
            ApiServer api = new ApiServer(services).start();
            LOG.info("ConTree listening on http://{}:{} (data {})", config.host(), api.port(), data);
            return new ContreeServer(db, services, api);
        } catch (RuntimeException | IOException e) {
            db.close();
            throw e;
        }
    }

    public Services services() {
        return services;
    }

    public int port() {
        return api.port();
    }

    @Override
    public void close() {
        api.close();
        db.close();
        LOG.info("ConTree stopped");
    }
}

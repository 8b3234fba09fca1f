package dev.contree.api;

import dev.contree.auth.Principal;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP face of ConTree: the v1 API on Javalin/Jetty. Thin: authenticate, parse, call a
 * service, render. Every failure leaves as {@code {"error": "...", "status": N}}.
 */
public final class ApiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ApiServer.class);
    private static final Logger ACCESS = LoggerFactory.getLogger("access");

    private final Javalin app;
    private final BodyBudget bodies;

    public ApiServer(ApiConfig cfg, ApiServices s) {
        long maxJson = cfg.maxJsonBytes();
        long maxUpload = cfg.limits().maxUploadBytes();
        var files = new FilesRoutes(s.files());
        var images = new ImagesRoutes(s.images(), maxJson);
        var inspect = new InspectRoutes(s.images(), s.imageFiles(), dev.contree.inspect.InspectLimits.fromEnvironment());
        var instances = new InstancesRoutes(s.instances(), maxJson, cfg.limits().instanceMaxTimeout());
        var imports = new ImportRoutes(s.imports(), maxJson, cfg.limits().importMaxTimeout());
        var lineage = new LineageRoute(s.images());
        var tree = new TreeRoutes(s.images(), s.operations());
        var ui = new UiRoutes();
        var operations = new OperationsRoutes(s.operations());
        var subprocesses = new SubprocessRoutes(s.instances(), maxJson, cfg.limits().instanceMaxTimeout());
        var whoami = new WhoamiRoute(cfg.limits(), cfg.instanceConcurrencyNow(), s.operations());
        HostPaths.dataDir(cfg.dataDir());
        // Four maximal JSON bodies in memory at once (1 GiB by default), any number of small ones.
        bodies = new BodyBudget(4 * maxJson);
        app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.concurrency.useVirtualThreads = true;
            config.jetty.host = cfg.host();
            config.jetty.port = cfg.port();
            // Errors Jetty answers before routing (bad framing, invalid URI) are JSON too, not HTML.
            config.jetty.modifyServer(server -> server.setErrorHandler(new JsonErrorHandler()));
            config.jetty.modifyServletContextHandler(handler -> handler.addEventListener(bodies));
            config.jetty.modifyServer(server -> server.addBean(new org.eclipse.jetty.server.NetworkConnectionLimit(connectionLimit(), server)));
            config.router.ignoreTrailingSlashes = true;
            config.router.treatMultipleSlashesAsSingleSlash = true;
            config.http.maxRequestSize = maxJson;
            config.http.generateEtags = false;
            // Javalin gzips only for clients that send Accept-Encoding: gzip (the CLI does not).
            config.http.compressionStrategy = CompressionStrategy.GZIP;
            config.requestLogger.http(ApiServer::logRequest);

            var r = config.routes;
            r.before("/v1/*", ctx -> Auth.authenticate(ctx, s.tokens()));
            r.before("/v1", ctx -> Auth.authenticate(ctx, s.tokens()));
            // A declared body past its route's limit is refused before a byte of it is read (not after the
            // idle timeout of a body that never comes). Bodies without a length are capped while read.
            r.before("/v1/*", ctx -> refuseOversizedBody(ctx, maxUpload, maxJson, bodies));
            whoami.register(r);
            files.register(r);
            images.register(r);
            inspect.register(r);
            operations.register(r);
            subprocesses.register(r);
            instances.register(r);
            imports.register(r);
            lineage.register(r);
            tree.register(r);
            ui.register(r);

            r.exception(ApiException.class, (e, ctx) -> error(ctx, e.status(), e.getMessage()));
            r.exception(HttpResponseException.class, (e, ctx) -> error(ctx, e.getStatus(), e.getMessage()));
            r.exception(Exception.class, (e, ctx) -> {
                dev.contree.store.StoreUnavailableException down = databaseDown(e);
                if (down != null) {
                    // Nothing is wrong with the request: the database is away (restarting, failing over). Retry.
                    LOG.warn("{} {}: {}", ctx.method(), ctx.path(), down.getMessage());
                    ctx.header("Retry-After", "5");
                    error(ctx, 503, "the database is unavailable, retry shortly (" + down.getMessage() + ")");
                    return;
                }
                LOG.error("unhandled error on {} {}", ctx.method(), ctx.path(), e);
                error(ctx, 500, "internal server error: " + e.getClass().getSimpleName());
            });
            r.error(404, "*", ctx -> {
                if (ctx.result() == null || ctx.result().isEmpty()) error(ctx, 404, "no such route: " + ctx.method() + " " + ctx.path());
            });
            r.error(405, "*", ctx -> error(ctx, 405, "method not allowed: " + ctx.method() + " " + ctx.path()));
        });
    }

    public ApiServer start() {
        app.start();
        return this;
    }

    public int port() {
        return app.port();
    }

    private static void refuseOversizedBody(Context ctx, long maxUpload, long maxJson, BodyBudget bodies)
            throws InterruptedException {
        String declared = ctx.header("Content-Length");
        boolean upload = ctx.method() == io.javalin.http.HandlerType.POST
                && ctx.path().replaceAll("/+", "/").replaceAll("(.)/$", "$1").equals("/v1/files");
        if (declared == null) {
            // A chunked body may grow to the JSON limit while it is read: reserve that much.
            if (!upload && ctx.header("Transfer-Encoding") != null) bodies.reserve(ctx, maxJson);
            return;
        }
        long limit = upload ? maxUpload : maxJson;
        long length;
        try {
            length = Long.parseLong(declared.strip());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest("bad Content-Length");
        }
        if (length > limit) {
            ctx.header("Connection", "close"); // the unread body must not be taken for the next request
            throw ApiException.tooLarge("request body of " + length + " bytes exceeds the limit of " + limit + " bytes");
        }
        if (!upload && length > 0) bodies.reserve(ctx, length); // uploads stream to disk
    }

    /**
     * Connections held at once: a quarter of the descriptors this process may open (sandboxes, layers and the
     * database need the rest), between 256 and 16,384. Past it Jetty stops accepting until one closes, so a flood
     * of idle or trickling connections (which costs nothing before authentication) cannot take the descriptors
     * sandboxes need.
     */
    public static int connectionLimit() {
        Integer configured = Integer.getInteger("contree.connectionLimit"); // tests: a flood they can afford
        if (configured != null) return configured;
        long maxFds = java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.UnixOperatingSystemMXBean unix ? unix.getMaxFileDescriptorCount() : 4096;
        return (int) Math.max(256, Math.min(16_384, maxFds / 4));
    }

    /** Bytes of request bodies the server holds (or may hold) in memory right now. */
    public long bodyBytesReserved() {
        return bodies.reservedBytes();
    }

    /** The database outage {@code e} is or was caused by, else null. */
    private static dev.contree.store.StoreUnavailableException databaseDown(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof dev.contree.store.StoreUnavailableException u) return u;
        }
        return null;
    }

    private static void error(Context ctx, int status, String message) {
        var body = Json.object();
        body.put("error", HostPaths.scrub(message));
        body.put("status", status);
        Json.send(ctx, status, body);
    }

    private static void logRequest(Context ctx, Float ms) {
        Principal p = ctx.attribute("contree.principal");
        ACCESS.info("method={} path={} status={} ms={} account={} ua=\"{}\"", ctx.method(), ctx.path(), ctx.statusCode(),
                String.format("%.1f", ms), p == null ? "-" : p.accountId(), ctx.userAgent());
    }

    @Override
    public void close() {
        app.stop();
    }
}

package dev.contree.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.BlobStore;
import dev.contree.files.FileRecord;
import dev.contree.files.FileService;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.io.IOException;
import java.util.Locale;
import java.util.Optional;

/** {@code /v1/files}: content-addressed uploads, lookups by sha256 (path and legacy query forms), listing. */
final class FilesRoutes {
    private final FileService files;

    FilesRoutes(FileService files) {
        this.files = files;
    }

    void register(RoutesConfig r) {
        r.post("/v1/files", this::upload);
        r.get("/v1/files", ctx -> listOrLookup(ctx, true));
        r.head("/v1/files", ctx -> listOrLookup(ctx, false));
        r.get("/v1/files/{sha256}", ctx -> byHash(ctx, ctx.pathParam("sha256"), true));
        r.head("/v1/files/{sha256}", ctx -> byHash(ctx, ctx.pathParam("sha256"), false));
    }

    private void upload(Context ctx) {
        try {
            FileRecord f = files.upload(Auth.account(ctx), ctx.req().getInputStream());
            Json.send(ctx, 201, Wire.file(f));
        } catch (FileService.StorageFullException e) {
            throw new ApiException(403, e.getMessage());
        } catch (BlobStore.TooLargeException e) {
            throw ApiException.tooLarge(e.getMessage());
        } catch (FileService.SharingFailedException e) {
            throw new ApiException(503, e.getMessage());
        } catch (IOException e) {
            // A client that hangs up or sends a broken chunked body: nothing was stored.
            throw ApiException.badRequest("upload failed while reading the body: " + e.getMessage());
        }
    }

    private void listOrLookup(Context ctx, boolean withBody) {
        String sha = ctx.queryParam("sha256");
        String uuid = ctx.queryParam("uuid");
        if (sha != null) {
            byHash(ctx, sha, withBody);
        } else if (uuid != null) {
            answer(ctx, files.byUuid(Auth.account(ctx), Params.uuid(uuid, "file")), withBody);
        } else {
            ArrayNode list = Json.MAPPER.createArrayNode();
            files.list(Auth.account(ctx), Params.timeRange(ctx), Params.page(ctx)).forEach(f -> list.add(Wire.file(f)));
            ObjectNode body = Json.object();
            body.set("files", list);
            if (withBody) Json.send(ctx, 200, body);
            else ctx.status(200);
        }
    }

    private void byHash(Context ctx, String sha, boolean withBody) {
        String normalised = sha.toLowerCase(Locale.ROOT);
        if (!normalised.matches("[0-9a-f]{64}")) throw ApiException.badRequest("invalid sha256 '" + sha + "': expected 64 hex digits");
        answer(ctx, files.bySha256(Auth.account(ctx), normalised), withBody);
    }

    private static void answer(Context ctx, Optional<FileRecord> file, boolean withBody) {
        FileRecord f = file.orElseThrow(() -> ApiException.notFound("file not found"));
        if (withBody) Json.send(ctx, 200, Wire.file(f));
        else ctx.status(200);
    }
}

package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.FileRecord;
import dev.contree.images.Image;
import dev.contree.operations.Operation;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** Domain values rendered in the exact wire shapes of the ConTree v1 API. */
public final class Wire {
    /** RFC 3339, UTC as {@code +00:00}, exactly 6 fractional digits (Python 3.10's fromisoformat accepts it). */
    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'+00:00'").withZone(ZoneOffset.UTC);

    private Wire() {}

    public static String time(Instant t) {
        return t == null ? null : TIME.format(t);
    }

    /** An image with its execution defaults (env, working dir, user): for single-image answers, not listings. */
    public static ObjectNode imageWithConfig(Image i) {
        ObjectNode o = image(i);
        ObjectNode config = o.putObject("config");
        ObjectNode env = config.putObject("env");
        i.config().env().forEach(env::put);
        config.put("working_dir", i.config().workingDir());
        config.put("user", i.config().user());
        return o;
    }

    public static ObjectNode image(Image i) {
        ObjectNode o = Json.object();
        o.put("uuid", i.uuid());
        o.put("tag", i.tag());
        o.put("created_at", time(i.createdAt()));
        o.put("operation_uuid", i.operationUuid());
        o.put("parent_uuid", i.parentUuid());
        o.put("size", i.size());
        return o;
    }

    /** {@code FileResponse}/{@code File}: all five fields always. */
    public static ObjectNode file(FileRecord f) {
        ObjectNode o = Json.object();
        o.put("uuid", f.uuid());
        o.put("sha256", f.sha256());
        o.put("size", f.size());
        o.put("created_at", time(f.createdAt()));
        o.put("updated_at", time(f.updatedAt()));
        return o;
    }

    public static ObjectNode operationSummary(Operation op) {
        ObjectNode o = Json.object();
        o.put("uuid", op.uuid());
        o.put("kind", op.kind().wire);
        o.put("status", op.status().name());
        o.put("error", HostPaths.scrub(op.error()));
        o.put("created_at", time(op.createdAt()));
        o.put("started_at", time(op.startedAt()));
        o.put("finished_at", time(op.finishedAt()));
        o.put("duration", op.durationSeconds());
        o.put("image_uuid", op.imageUuid());
        o.put("result_image_uuid", op.resultImageUuid());
        o.put("image_size", op.imageSize());
        o.put("consumed_cpu", op.consumedCpu());
        o.put("consumed_memory", op.consumedMemory());
        return o;
    }

    public static ObjectNode operation(Operation op) {
        ObjectNode o = operationSummary(op);
        o.set("metadata", OperationMetadata.of(op));
        if (op.resultImageUuid() != null || op.resultTag() != null) {
            ObjectNode result = o.putObject("result");
            result.put("image", op.resultImageUuid());
            result.put("tag", op.resultTag());
        } else {
            o.putNull("result");
        }
        return o;
    }
}

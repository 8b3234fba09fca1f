package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.files.FileRecord;
import dev.contree.images.Image;
import dev.contree.operations.Operation;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Map;

/** Domain values rendered in the exact wire shapes of the ConTree v1 API. */
public final class Wire {
    /** RFC 3339, UTC as {@code +00:00}, exactly 6 fractional digits (Python 3.10's fromisoformat accepts it). */
    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'+00:00'").withZone(ZoneOffset.UTC);

    private Wire() {}

    public static String time(Instant t) {
        return t == null ? null : TIME.format(t);
    }

    record ImageShape(String uuid, String tag, String createdAt, String operationUuid, String parentUuid, long size) {}

    record ConfigShape(Map<String, String> env, String workingDir, String user) {}

    /** {@code FileResponse}/{@code File}: all five fields always. */
    record FileShape(String uuid, String sha256, long size, String createdAt, String updatedAt) {}

    record OperationSummary(String uuid, String kind, String status, String error, String createdAt, String startedAt,
                            String finishedAt, Double duration, String imageUuid, String resultImageUuid, Long imageSize,
                            Double consumedCpu, Long consumedMemory) {}

    record ResultShape(String image, String tag) {}

    /** An image with its execution defaults (env, working dir, user): for single-image answers, not listings. */
    public static ObjectNode imageWithConfig(Image i) {
        ObjectNode o = image(i);
        o.set("config", Json.tree(new ConfigShape(i.config().env(), i.config().workingDir(), i.config().user())));
        return o;
    }

    public static ObjectNode image(Image i) {
        return Json.tree(new ImageShape(i.uuid(), i.tag(), time(i.createdAt()), i.operationUuid(), i.parentUuid(), i.size()));
    }

    public static ObjectNode file(FileRecord f) {
        return Json.tree(new FileShape(f.uuid(), f.sha256(), f.size(), time(f.createdAt()), time(f.updatedAt())));
    }

    /** Its error text gets the host-path scrub. */
    public static ObjectNode operationSummary(Operation op) {
        return Json.tree(new OperationSummary(op.uuid(), op.kind().wire, op.status().name(), HostPaths.scrub(op.error()),
                time(op.createdAt()), time(op.startedAt()), time(op.finishedAt()), op.durationSeconds(), op.imageUuid(),
                op.resultImageUuid(), op.imageSize(), op.consumedCpu(), op.consumedMemory()));
    }

    /** The summary, then {@code metadata}, then {@code result} (null until there is an image or tag). */
    public static ObjectNode operation(Operation op) {
        ObjectNode o = operationSummary(op);
        o.set("metadata", OperationMetadata.of(op));
        boolean produced = op.resultImageUuid() != null || op.resultTag() != null;
        o.set("result", produced ? Json.tree(new ResultShape(op.resultImageUuid(), op.resultTag())) : null);
        return o;
    }
}

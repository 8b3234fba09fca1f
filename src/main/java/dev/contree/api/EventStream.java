package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.operations.EventPayload;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationService;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.zip.GZIPOutputStream;

/**
 * {@code GET /v1/operations/{id}/events}: the operation's event log as Server-Sent Events. Replays
 * events after {@code Last-Event-Id} (or {@code since}); with {@code follow=1} keeps streaming until
 * the {@code completion} event. gzip (sync-flushed per frame) only when the client accepts it.
 */
final class EventStream {
    private static final long KEEPALIVE_SECONDS = 15;
    /** Queued for a follower when another node appended to the log: read it from the store. */
    private static final OperationEvent READ_STORE = new OperationEvent("", -1, java.time.Instant.EPOCH, 0,
            new EventPayload.Shutdown(java.time.Instant.EPOCH, EventPayload.Shutdown.Reason.ERROR));
    private final OperationService operations;

    EventStream(OperationService operations) {
        this.operations = operations;
    }

    void serve(Context ctx, Operation op) throws IOException, InterruptedException {
        long after = afterId(ctx);
        Integer spid = spid(ctx);
        boolean follow = Boolean.TRUE.equals(Params.bool(ctx, "follow"));
        boolean gzip = accepts(ctx, "gzip");

        LinkedBlockingQueue<OperationEvent> live = new LinkedBlockingQueue<>();
        Consumer<OperationEvent> listener = e -> { if (e.operationUuid().equals(op.uuid())) live.add(e); };
        // Another node (the cluster worker running it) appended: a marker, on which the log is read from the store.
        Consumer<String> elsewhere = uuid -> { if (uuid.equals(op.uuid())) live.add(READ_STORE); };
        if (follow) {
            operations.onEvent(listener);
            operations.onEventsElsewhere(elsewhere);
        }
        try {
            ctx.status(200);
            ctx.res().setContentType("text/event-stream");
            ctx.res().setHeader("Cache-Control", "no-cache");
            ctx.res().setHeader("X-Accel-Buffering", "no");
            if (gzip) ctx.res().setHeader("Content-Encoding", "gzip");
            OutputStream raw = ctx.res().getOutputStream();
            try (OutputStream out = gzip ? new GZIPOutputStream(raw, 8192, true) : raw) {
                long last = after;
                boolean done = false;
                for (OperationEvent e : operations.events(op.uuid(), after)) {
                    write(out, e, spid);
                    last = e.id();
                    done |= e.payload() instanceof EventPayload.Completion;
                }
                out.flush();
                while (follow && !done) {
                    OperationEvent e = live.poll(KEEPALIVE_SECONDS, TimeUnit.SECONDS);
                    boolean idle = e == null;
                    if (idle && operations.logsAreShared()) e = READ_STORE; // a lost notification costs one keepalive period
                    if (e == null) {
                        out.write(": keepalive\n\n".getBytes(StandardCharsets.US_ASCII));
                    } else if (e == READ_STORE) {
                        boolean wrote = false;
                        for (OperationEvent stored : operations.events(op.uuid(), last)) {
                            write(out, stored, spid);
                            last = stored.id();
                            wrote = true;
                            done |= stored.payload() instanceof EventPayload.Completion;
                        }
                        if (idle && !wrote) out.write(": keepalive\n\n".getBytes(StandardCharsets.US_ASCII));
                    } else if (e.id() > last) {
                        write(out, e, spid);
                        last = e.id();
                        done = e.payload() instanceof EventPayload.Completion;
                    }
                    out.flush();
                }
            }
        } finally {
            operations.removeEventListener(listener);
            operations.removeEventsElsewhereListener(elsewhere);
        }
    }

    private static void write(OutputStream out, OperationEvent e, Integer spid) throws IOException {
        if (spid != null && e.spid() != spid && !(e.payload() instanceof EventPayload.Completion)) return;
        ObjectNode json = Json.object();
        json.put("id", e.id());
        json.put("ts", Wire.time(e.ts()));
        json.put("spid", e.spid());
        json.put("type", e.type());
        json.set("data", EventData.of(e.payload()));
        String frame = "id: " + e.id() + "\nevent: " + e.type() + "\ndata: " + Json.MAPPER.writeValueAsString(json) + "\n\n";
        out.write(frame.getBytes(StandardCharsets.UTF_8));
    }

    private static long afterId(Context ctx) {
        long after = -1;
        String header = ctx.header("Last-Event-Id");
        if (header == null) header = ctx.header("Last-Event-ID");
        if (header != null && !header.isBlank()) {
            try {
                after = Long.parseLong(header.trim());
            } catch (NumberFormatException e) {
                throw ApiException.badRequest("Last-Event-Id must be an integer event id");
            }
        }
        String since = ctx.queryParam("since");
        if (since != null && !since.isBlank()) {
            try {
                after = Math.max(after, Long.parseLong(since.trim()));
            } catch (NumberFormatException e) {
                throw ApiException.badRequest("since must be an integer event id");
            }
        }
        return after;
    }

    private static Integer spid(Context ctx) {
        String v = ctx.queryParam("spid");
        if (v == null || v.isBlank()) return null;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest("spid must be an integer");
        }
    }

    static boolean accepts(Context ctx, String encoding) {
        String h = ctx.header("Accept-Encoding");
        return h != null && h.toLowerCase(java.util.Locale.ROOT).contains(encoding);
    }
}

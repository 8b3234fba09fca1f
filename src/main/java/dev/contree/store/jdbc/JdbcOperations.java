package dev.contree.store.jdbc;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.images.Image;
import dev.contree.operations.EventPayload;
import dev.contree.operations.JobOutcome;
import dev.contree.operations.Operation;
import dev.contree.operations.OperationEvent;
import dev.contree.operations.OperationGlance;
import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationRequest;
import dev.contree.operations.OperationResult;
import dev.contree.operations.OperationService;
import dev.contree.operations.OperationStatus;
import dev.contree.store.OperationRecords;
import dev.contree.store.Page;
import dev.contree.store.codec.OperationCodec;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Operations and the reading of their event logs, the same on every engine. How an event gets the next id of its log
 * is the engine's ({@link #appendIn}): SQLite's single writer may count in memory, PostgreSQL's concurrent writers may
 * not; an engine may also defer its appends ({@link #append}), as long as a read of a log first commits them
 * ({@link #beforeRead}). Every status change is one conditional UPDATE, so of two racing changes exactly one applies on
 * any engine. Nothing written is read back: what a read would give is built from what was written.
 */
public abstract class JdbcOperations implements OperationRecords {
    protected static final Set<OperationStatus> ACTIVE = EnumSet.copyOf(
            Arrays.stream(OperationStatus.values()).filter(s -> !s.terminal()).toList());

    protected final Engine db;
    private final List<Consumer<OperationEvent>> committedListeners = new CopyOnWriteArrayList<>();

    protected JdbcOperations(Engine db) {
        this.db = db;
    }

    @Override
    public Operation create(String accountId, OperationKind kind, String imageUuid, OperationRequest request) {
        String uuid = UUID.randomUUID().toString();
        Instant created = Times.now();
        OperationRequest stored = OperationCodec.stored(request);
        db.write(c -> Sql.update(c, "INSERT INTO operations (uuid, account_id, kind, status, created_at, image_uuid, metadata) VALUES (?,?,?,?,?,?,?)",
                uuid, accountId, kind.wire, OperationStatus.PENDING.name(), Times.toMicros(created), imageUuid,
                OperationCodec.metadata(stored, null)));
        // What a read of the row would give, without reading it back.
        return new Operation(uuid, accountId, kind, OperationStatus.PENDING, null, created, null, null, imageUuid, null, null,
                null, null, null, stored, null);
    }

    @Override
    public Optional<Operation> get(String uuid) {
        return Optional.ofNullable(db.read(c -> get(c, uuid)));
    }

    @Override
    public List<Operation> list(String accountId, OperationService.Query q, Page page) {
        Where where = new Where().and("account_id = ?", accountId);
        if (q.status() != null) where.and("status = ?", q.status().name());
        if (q.kind() != null) where.and("kind = ?", q.kind().wire);
        where.range("created_at", q.range());
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE " + where.sql()
                + " ORDER BY created_at DESC, uuid DESC LIMIT ? OFFSET ?", JdbcOperations::row, where.params(page.limit(), page.offset())));
    }

    @Override
    public Map<String, Long> countByStatus(String accountId) {
        Map<String, Long> out = new LinkedHashMap<>();
        db.read(c -> Sql.query(c, "SELECT status, COUNT(*) AS n FROM operations WHERE account_id = ? GROUP BY status ORDER BY status",
                rs -> out.put(rs.getString("status"), rs.getLong("n")), accountId));
        return out;
    }

    @Override
    public List<Operation> active() {
        List<String> names = ACTIVE.stream().map(Enum::name).toList();
        return db.read(c -> Sql.query(c, "SELECT * FROM operations WHERE status IN (" + Sql.placeholders(names.size())
                + ") ORDER BY created_at, uuid", JdbcOperations::row, names.toArray()));
    }

    @Override
    public List<OperationGlance> glances(String accountId, Collection<String> uuids) {
        List<String> distinct = List.copyOf(new LinkedHashSet<>(uuids));
        if (distinct.isEmpty()) return List.of();
        List<Object> params = new ArrayList<>(List.of(accountId));
        params.addAll(distinct);
        return db.read(c -> glances(c, "account_id = ? AND uuid IN (" + Sql.placeholders(distinct.size()) + ")", "",
                params.toArray()));
    }

    @Override
    public List<OperationGlance> activeGlances(String accountId, int limit) {
        List<Object> params = new ArrayList<>(List.of(accountId));
        ACTIVE.forEach(s -> params.add(s.name()));
        params.add(limit);
        return db.read(c -> glances(c, "account_id = ? AND status IN (" + Sql.placeholders(ACTIVE.size()) + ")",
                " ORDER BY created_at, uuid LIMIT ?", params.toArray()));
    }

    /**
     * An SQL expression for the scalar (as text) or the JSON text (an array) at {@code keys} in {@code m}, the
     * operation's metadata as a JSON document of this engine ({@link #metadataDocument}); null if absent. A boolean
     * reads as {@code true}/{@code false} or {@code 1}/{@code 0}.
     */
    protected abstract String jsonAt(String... keys);

    /** The {@code metadata} column as a JSON document {@link #jsonAt} reads. */
    protected abstract String metadataDocument();

    /** Ends the inner query of a glance read, so that an engine parses each row's metadata once (not per field). */
    protected String parseOnce() {
        return "";
    }

    /** The glances of the rows matching {@code where}, fields picked out of the metadata in SQL: no output decoded. */
    private List<OperationGlance> glances(Connection c, String where, String orderAndLimit, Object... params) throws SQLException {
        String sql = "SELECT uuid, account_id, kind, status, error, created_at, image_uuid, result_image_uuid, "
                + jsonAt("v") + " AS g_v, "
                + jsonAt("request", "spec", "command") + " AS g_command, "
                + jsonAt("request", "spec", "args") + " AS g_args, "
                + jsonAt("request", "spec", "shell") + " AS g_shell, "
                + jsonAt("request", "spec", "disposable") + " AS g_disposable, "
                + jsonAt("request", "url") + " AS g_url, "
                + jsonAt("result", "sandbox", "exitCode") + " AS g_exit_code, "
                + jsonAt("result", "sandbox", "signal") + " AS g_signal, "
                + jsonAt("result", "sandbox", "timedOut") + " AS g_timed_out"
                + " FROM (SELECT uuid, account_id, kind, status, error, created_at, image_uuid, result_image_uuid, "
                + metadataDocument() + " AS m FROM operations WHERE " + where + orderAndLimit
                + (orderAndLimit.isEmpty() ? parseOnce() : "") + ") o" + orderAndLimit.replace(" LIMIT ?", "");
        List<OperationGlance> out = new ArrayList<>();
        List<String> older = new ArrayList<>();
        Sql.query(c, sql, rs -> {
            OperationGlance g = glance(rs);
            if (g == null) older.add(rs.getString("uuid"));
            else out.add(g);
            return null;
        }, params);
        // Rows of older servers (no "v", the wire's shapes of the time) are decoded whole: none are written any more.
        for (String uuid : older) {
            Operation op = get(c, uuid);
            if (op != null) out.add(OperationGlance.of(op));
        }
        if (!older.isEmpty() && !orderAndLimit.isEmpty()) {
            out.sort(Comparator.comparing(OperationGlance::createdAt).thenComparing(OperationGlance::uuid));
        }
        return out;
    }

    /** Null for a row of an older format. */
    private static OperationGlance glance(ResultSet rs) throws SQLException {
        if (rs.getString("g_v") == null) return null;
        OperationKind kind = OperationKind.parse(rs.getString("kind"));
        OperationGlance.Request request = switch (kind) {
            case INSTANCE -> new OperationGlance.Execution(rs.getString("g_command"), stringList(rs.getString("g_args")),
                    bool(rs.getString("g_shell")), bool(rs.getString("g_disposable")));
            case IMAGE_IMPORT -> new OperationGlance.Import(rs.getString("g_url"));
        };
        String exitCode = rs.getString("g_exit_code");
        OperationGlance.Exit exit = exitCode == null ? null
                : new OperationGlance.Exit(Integer.parseInt(exitCode), Integer.parseInt(rs.getString("g_signal")),
                bool(rs.getString("g_timed_out")));
        return new OperationGlance(rs.getString("uuid"), rs.getString("account_id"), kind,
                OperationStatus.valueOf(rs.getString("status")), rs.getString("image_uuid"), rs.getString("result_image_uuid"),
                Sql.instant(rs, "created_at"), rs.getString("error"), request, exit);
    }

    private static boolean bool(String v) {
        return "true".equals(v) || "1".equals(v);
    }

    private static final ObjectMapper ARGS = new ObjectMapper();

    private static List<String> stringList(String json) {
        if (json == null) return List.of();
        try {
            List<String> out = new ArrayList<>();
            ARGS.readTree(json).forEach(a -> out.add(a.asText()));
            return out;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("corrupt args in operations store: " + json, e);
        }
    }

    @Override
    public boolean transition(String uuid, Set<OperationStatus> from, OperationStatus to) {
        return db.write(c -> transition(c, uuid, from, to));
    }

    @Override
    public void executingLater(String uuid) {
        long now = Times.toMicros(Times.now());
        db.writeLater(c -> Sql.update(c, "UPDATE operations SET status = ?, started_at = COALESCE(started_at, ?) WHERE uuid = ? AND status = ?",
                OperationStatus.EXECUTING.name(), now, uuid, OperationStatus.ASSIGNED.name()));
    }

    private static boolean transition(Connection c, String uuid, Set<OperationStatus> from, OperationStatus to) throws SQLException {
        if (from.isEmpty()) return false;
        long now = Times.toMicros(Times.now());
        List<Object> params = new ArrayList<>(List.of(to.name()));
        String stamps = "";
        if (to == OperationStatus.EXECUTING) {
            stamps = ", started_at = COALESCE(started_at, ?)";
            params.add(now);
        } else if (to.terminal()) {
            stamps = ", finished_at = ?";
            params.add(now);
        }
        params.add(uuid);
        from.forEach(s -> params.add(s.name()));
        return Sql.update(c, "UPDATE operations SET status = ?" + stamps + " WHERE uuid = ? AND status IN ("
                + Sql.placeholders(from.size()) + ")", params.toArray()) == 1;
    }

    /**
     * Records the outcome if the operation is still active and appends its completion event, inside the caller's
     * transaction ({@link JdbcStore#finish}, which {@link #announce}s the event once that commits). Null, and nothing
     * recorded, if the operation already ended.
     *
     * @param created the image recorded in this transaction for a {@link JobOutcome.Created} outcome, else null
     */
    OperationEvent finish(Connection c, String uuid, JobOutcome outcome, Image created) throws SQLException {
        String error = null, resultImage = null, resultTag = null;
        Long imageSize = null, memory = null;
        Double cpu = null;
        OperationResult result = null;
        OperationStatus status;
        switch (outcome) {
            case JobOutcome.Failed f -> {
                status = OperationStatus.FAILED;
                error = f.reason();
            }
            case JobOutcome.Cancelled x -> {
                status = OperationStatus.CANCELLED;
                error = x.reason();
            }
            case JobOutcome.Succeeded done -> {
                status = OperationStatus.SUCCESS;
                imageSize = done.imageSize();
                switch (done.image()) {
                    case JobOutcome.Created n -> {
                        if (created == null) throw new IllegalArgumentException("a created image is recorded with its outcome");
                        resultImage = created.uuid();
                        resultTag = n.image().tag() != null ? n.image().tag() : created.tag();
                    }
                    case JobOutcome.Unchanged u -> resultImage = u.imageUuid();
                    case JobOutcome.Discarded d -> { }
                }
                if (done.usage() != null) {
                    cpu = done.usage().cpuSeconds();
                    memory = done.usage().memoryKiB();
                }
                result = done.result();
            }
        }
        if (!transition(c, uuid, ACTIVE, status)) return null;
        MetadataWithResult metadata = result == null ? new MetadataWithResult("metadata", List.of()) : metadataWithResult(c, uuid, result);
        List<Object> params = new ArrayList<>(Arrays.asList(error, resultImage, resultTag, imageSize, cpu, memory));
        params.addAll(metadata.params());
        params.add(uuid);
        Sql.update(c, "UPDATE operations SET error = ?, result_image_uuid = ?, result_tag = ?, image_size = ?, consumed_cpu = ?,"
                + " consumed_memory = ?, metadata = " + metadata.sql() + " WHERE uuid = ?", params.toArray());
        Operation op = Sql.one(c, "SELECT " + SUMMARY_COLUMNS + " FROM operations WHERE uuid = ?", JdbcOperations::summary, uuid);
        return appendIn(c, uuid, 0, EventPayload.Completion.of(op));
    }

    /** An SQL expression for the {@code metadata} column and the values bound at its placeholders. */
    public record MetadataWithResult(String sql, List<Object> params) {}

    /**
     * The {@code metadata} column of an operation being finished with {@code result} set in it (inside the finish's
     * transaction). Here, portably: the stored request read and the column written whole; an engine that can set a
     * member of a JSON text in place overrides it.
     */
    protected MetadataWithResult metadataWithResult(Connection c, String uuid, OperationResult result) throws SQLException {
        Operation op = get(c, uuid);
        return new MetadataWithResult("?", List.of(OperationCodec.metadata(op.request(), result)));
    }

    @Override
    public boolean cancel(String uuid, String reason) {
        return db.write(c -> {
            if (!transition(c, uuid, ACTIVE, OperationStatus.CANCELLED)) return false;
            Sql.update(c, "UPDATE operations SET error = ? WHERE uuid = ?", reason, uuid);
            return true;
        });
    }

    /** Appends the event in a transaction of its own, and announces it once that commits. */
    @Override
    public OperationEvent append(String operationUuid, int spid, EventPayload payload) {
        OperationEvent event = db.write(c -> appendIn(c, operationUuid, spid, payload));
        announce(event);
        return event;
    }

    /** Inserts an event with the log's next id in the caller's transaction on {@code c}. */
    protected abstract OperationEvent appendIn(Connection c, String operationUuid, int spid, EventPayload payload) throws SQLException;

    /** Tells {@link #onCommitted} listeners of a committed event; called in id order within each log. */
    protected final void announce(OperationEvent event) {
        for (Consumer<OperationEvent> l : committedListeners) l.accept(event);
    }

    @Override
    public void onCommitted(Consumer<OperationEvent> listener) {
        committedListeners.add(listener);
    }

    /** Before a read of a log: an engine that defers appends commits the log's deferred events, so the read sees them. */
    protected void beforeRead(String operationUuid) {}

    @Override
    public List<OperationEvent> events(String operationUuid, long afterId) {
        beforeRead(operationUuid);
        return db.read(c -> Sql.query(c, "SELECT * FROM operation_events WHERE operation_uuid = ? AND id > ? ORDER BY id",
                rs -> event(operationUuid, rs), operationUuid, afterId));
    }

    @Override
    public List<OperationEvent> events(String operationUuid, long afterId, int spid) {
        beforeRead(operationUuid);
        return db.read(c -> Sql.query(c,
                "SELECT * FROM operation_events WHERE operation_uuid = ? AND id > ? AND spid = ? ORDER BY id",
                rs -> event(operationUuid, rs), operationUuid, afterId, spid));
    }

    private static OperationEvent event(String operationUuid, ResultSet rs) throws SQLException {
        return new OperationEvent(operationUuid, rs.getLong("id"), Sql.instant(rs, "ts"), rs.getInt("spid"),
                OperationCodec.event(rs.getString("type"), rs.getString("data")));
    }

    private static Operation get(Connection c, String uuid) throws SQLException {
        return Sql.one(c, "SELECT * FROM operations WHERE uuid = ?", JdbcOperations::row, uuid);
    }

    /** The columns of an operation but its metadata: what a completion event says. */
    protected static final String SUMMARY_COLUMNS = "uuid, account_id, kind, status, error, created_at, started_at, finished_at,"
            + " image_uuid, result_image_uuid, result_tag, image_size, consumed_cpu, consumed_memory";

    /** An operation from {@link #SUMMARY_COLUMNS}: no request, no result. */
    protected static Operation summary(ResultSet rs) throws SQLException {
        return new Operation(rs.getString("uuid"), rs.getString("account_id"), OperationKind.parse(rs.getString("kind")),
                OperationStatus.valueOf(rs.getString("status")), rs.getString("error"), Sql.instant(rs, "created_at"),
                Sql.instant(rs, "started_at"), Sql.instant(rs, "finished_at"), rs.getString("image_uuid"),
                rs.getString("result_image_uuid"), rs.getString("result_tag"), Sql.nullableLong(rs, "image_size"),
                Sql.nullableDouble(rs, "consumed_cpu"), Sql.nullableLong(rs, "consumed_memory"), null, null);
    }

    private static Operation row(ResultSet rs) throws SQLException {
        OperationKind kind = OperationKind.parse(rs.getString("kind"));
        OperationCodec.Metadata metadata = OperationCodec.metadata(kind, rs.getString("metadata"));
        return new Operation(rs.getString("uuid"), rs.getString("account_id"), kind,
                OperationStatus.valueOf(rs.getString("status")), rs.getString("error"), Sql.instant(rs, "created_at"),
                Sql.instant(rs, "started_at"), Sql.instant(rs, "finished_at"), rs.getString("image_uuid"),
                rs.getString("result_image_uuid"), rs.getString("result_tag"), Sql.nullableLong(rs, "image_size"),
                Sql.nullableDouble(rs, "consumed_cpu"), Sql.nullableLong(rs, "consumed_memory"),
                metadata.request(), metadata.result());
    }
}

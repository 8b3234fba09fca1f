package dev.contree.store.postgres;

import dev.contree.operations.OperationKind;
import dev.contree.operations.OperationStatus;
import dev.contree.store.QueueRecords;
import dev.contree.store.jdbc.Sql;
import dev.contree.store.jdbc.Times;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BiConsumer;
import java.util.function.Predicate;

/**
 * {@link QueueRecords} in PostgreSQL: claims with {@code FOR UPDATE SKIP LOCKED} (two workers never wait on each
 * other's candidates), leases on the database's clock, notifications with {@code pg_notify}/{@code LISTEN} on a
 * connection outside the pool.
 */
final class PostgresQueue implements QueueRecords {
    private static final Logger LOG = LoggerFactory.getLogger(PostgresQueue.class);
    /** Now in microseconds on the database's clock: one clock for the leases of every node. */
    private static final String NOW = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

    private final PostgresDatabase db;

    PostgresQueue(PostgresDatabase db) {
        this.db = db;
    }

    @Override
    public void enqueue(String operationUuid, String accountId, OperationKind kind, byte[] stdin, String secret) {
        db.write(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO queue (operation_uuid, account_id, kind, stdin, secret) VALUES (?, ?, ?, ?, ?)")) {
                ps.setString(1, operationUuid);
                ps.setString(2, accountId);
                ps.setString(3, kind.name());
                ps.setBytes(4, stdin == null || stdin.length == 0 ? null : stdin);
                ps.setString(5, secret);
                ps.executeUpdate();
            }
            Sql.query(c, "SELECT pg_notify(?, '')", rs -> null, Channel.QUEUE.pgName);
            return null;
        });
    }

    @Override
    public Counts counts(String accountId) {
        return db.read(c -> Sql.one(c, "SELECT count(*) FILTER (WHERE claimed_by IS NULL),"
                + " count(*) FILTER (WHERE claimed_by IS NULL AND account_id = ?), coalesce(sum(octet_length(stdin)) FILTER (WHERE claimed_by IS NULL), 0) FROM queue",
                rs -> new Counts(rs.getLong(1), rs.getLong(2), rs.getLong(3)), accountId));
    }

    @Override
    public Optional<Claim> claim(Claimant who, Set<OperationKind> kinds, Duration lease, int candidates, Predicate<String> runnableHere) {
        if (kinds.isEmpty()) return Optional.empty();
        List<String> kindNames = kinds.stream().map(Enum::name).toList();
        List<Object> params = new ArrayList<>(kindNames);
        params.add(candidates);
        // Fair order: the account holding the fewest claimed rows cluster-wide, then the one whose turn is oldest
        // (round robin among equals), then submission order. Read without locks: a row this worker cannot run is never
        // locked, so it never hides that row from the worker that can.
        List<String> rows = db.read(c -> Sql.query(c, "SELECT q.operation_uuid FROM queue q"
                + " JOIN operations o ON o.uuid = q.operation_uuid AND o.status = 'PENDING'"
                + " LEFT JOIN (SELECT account_id, count(*) AS n FROM queue WHERE claimed_by IS NOT NULL GROUP BY account_id) r"
                + " ON r.account_id = q.account_id"
                + " LEFT JOIN queue_turns t ON t.account_id = q.account_id"
                + " WHERE q.claimed_by IS NULL AND q.kind IN (" + Sql.placeholders(kindNames.size()) + ")"
                + " ORDER BY coalesce(r.n, 0), coalesce(t.last_claim, 0), q.seq LIMIT ?", rs -> rs.getString(1), params.toArray()));
        for (String uuid : rows) {
            if (!runnableHere.test(uuid)) continue;
            // The first runnable row nobody else is claiming right now (SKIP LOCKED), if it still waits.
            Claim claim = db.write(c -> one(c, "UPDATE queue SET claimed_by = ?, claimed_boot = ?, claimed_at = " + NOW + ", lease_expires = " + NOW + " + ?"
                    + " WHERE operation_uuid = (SELECT operation_uuid FROM queue WHERE operation_uuid = ? AND claimed_by IS NULL"
                    + " FOR UPDATE SKIP LOCKED) RETURNING operation_uuid, stdin, secret, account_id", who.workerId(), who.boot(), micros(lease), uuid));
            if (claim != null) return Optional.of(claim);
        }
        return Optional.empty();
    }

    private static Claim one(Connection c, String sql, Object... params) throws SQLException {
        List<Claim> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new Claim(rs.getString(1), rs.getBytes(2), rs.getString(3)));
                    Sql.update(c, "INSERT INTO queue_turns (account_id, last_claim) VALUES (?, " + NOW + ")"
                            + " ON CONFLICT (account_id) DO UPDATE SET last_claim = excluded.last_claim", rs.getString(4));
                }
            }
        }
        return out.isEmpty() ? null : out.getFirst();
    }

    private static long micros(Duration d) {
        return d.toNanos() / 1000;
    }

    @Override
    public List<Held> heartbeat(Claimant who, Duration lease) {
        // Only this process's claims: a previous process under the same worker id (restarted within its lease) held
        // rows whose work died with it, and renewing them would keep those operations EXECUTING forever.
        return db.write(c -> Sql.query(c, "UPDATE queue q SET lease_expires = " + NOW + " + ? FROM operations o"
                        + " WHERE q.claimed_by = ? AND q.claimed_boot = ? AND o.uuid = q.operation_uuid RETURNING q.operation_uuid, o.status",
                rs -> new Held(rs.getString(1), OperationStatus.valueOf(rs.getString(2))), micros(lease), who.workerId(), who.boot()));
    }

    @Override
    public boolean dequeueWaiting(String operationUuid) {
        return db.write(c -> Sql.update(c, "DELETE FROM queue WHERE operation_uuid = ? AND claimed_by IS NULL", operationUuid) == 1);
    }

    @Override
    public boolean release(String operationUuid, Claimant who) {
        // A worker that lost its claim (cut off for longer than a lease) must not delete the row of the one holding it now.
        return db.write(c -> Sql.update(c, "DELETE FROM queue WHERE operation_uuid = ? AND claimed_by = ? AND claimed_boot = ?",
                operationUuid, who.workerId(), who.boot()) == 1);
    }

    @Override
    public void forgetSecret(String operationUuid, Claimant who) {
        db.write(c -> Sql.update(c, "UPDATE queue SET secret = NULL WHERE operation_uuid = ? AND claimed_by = ? AND claimed_boot = ?"
                + " AND secret IS NOT NULL", operationUuid, who.workerId(), who.boot()));
    }

    @Override
    public boolean unclaim(String operationUuid, Claimant who) {
        return db.write(c -> {
            int n = Sql.update(c, "UPDATE queue q SET claimed_by = NULL, claimed_boot = NULL, claimed_at = NULL, lease_expires = NULL"
                    + " FROM operations o WHERE q.operation_uuid = ? AND q.claimed_by = ? AND q.claimed_boot = ?"
                    + " AND o.uuid = q.operation_uuid AND o.status = 'PENDING'", operationUuid, who.workerId(), who.boot());
            if (n == 1) Sql.query(c, "SELECT pg_notify(?, '')", rs -> null, Channel.QUEUE.pgName);
            return n == 1;
        });
    }

    @Override
    public List<Lapsed> lapsed(int limit) {
        return db.read(c -> Sql.query(c, "SELECT q.operation_uuid, q.claimed_by, q.claimed_boot, q.lease_expires, o.status FROM queue q"
                        + " JOIN operations o ON o.uuid = q.operation_uuid"
                        + " WHERE q.claimed_by IS NOT NULL AND q.lease_expires < " + NOW + " ORDER BY q.lease_expires LIMIT ?",
                rs -> new Lapsed(rs.getString(1), new Claimant(rs.getString(2), rs.getString(3)), Times.fromMicros(rs.getLong(4)),
                        OperationStatus.valueOf(rs.getString(5))),
                limit));
    }

    @Override
    public boolean handBack(String operationUuid, Claimant who) {
        return db.write(c -> {
            // One statement re-checks what lapsed() read: a lease renewed or an operation started since keeps its row.
            int n = Sql.update(c, "UPDATE queue q SET claimed_by = NULL, claimed_boot = NULL, claimed_at = NULL, lease_expires = NULL"
                    + " FROM operations o WHERE q.operation_uuid = ? AND q.claimed_by = ? AND q.claimed_boot = ? AND q.lease_expires < " + NOW
                    + " AND o.uuid = q.operation_uuid AND o.status = 'PENDING'", operationUuid, who.workerId(), who.boot());
            if (n == 1) Sql.query(c, "SELECT pg_notify(?, '')", rs -> null, Channel.QUEUE.pgName);
            return n == 1;
        });
    }

    @Override
    public boolean removeLapsed(String operationUuid, Claimant who) {
        return db.write(c -> Sql.update(c, "DELETE FROM queue WHERE operation_uuid = ? AND claimed_by = ? AND claimed_boot = ?"
                + " AND lease_expires < " + NOW, operationUuid, who.workerId(), who.boot()) == 1);
    }

    @Override
    public void expire(String workerId) {
        db.write(c -> Sql.update(c, "UPDATE queue SET lease_expires = 0 WHERE claimed_by = ?", workerId));
    }

    @Override
    public List<String> orphans(Duration olderThan) {
        long before = Times.toMicros(Times.now()) - micros(olderThan);
        return db.read(c -> Sql.query(c, "SELECT o.uuid FROM operations o WHERE o.status IN ('PENDING', 'ASSIGNED', 'EXECUTING')"
                + " AND o.created_at < ? AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.operation_uuid = o.uuid) LIMIT 100",
                rs -> rs.getString(1), before));
    }

    @Override
    public void advertise(String workerId, String apiUrl) {
        db.write(c -> Sql.update(c, "INSERT INTO queue_nodes (worker_id, api_url, seen_at) VALUES (?, ?, " + NOW + ")"
                + " ON CONFLICT (worker_id) DO UPDATE SET api_url = excluded.api_url, seen_at = excluded.seen_at", workerId, apiUrl));
    }

    @Override
    public Optional<String> apiUrl(String workerId) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT api_url FROM queue_nodes WHERE worker_id = ?",
                rs -> rs.getString(1), workerId)));
    }

    @Override
    public Optional<String> holder(String operationUuid) {
        return Optional.ofNullable(db.read(c -> Sql.one(c, "SELECT claimed_by FROM queue WHERE operation_uuid = ?",
                rs -> rs.getString(1), operationUuid)));
    }

    @Override
    public void notify(Channel channel, Collection<String> payloads) {
        if (payloads.isEmpty()) return;
        db.write(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT pg_notify(?, p) FROM unnest(?) AS p")) {
                ps.setString(1, channel.pgName);
                ps.setArray(2, c.createArrayOf("text", payloads.toArray()));
                ps.executeQuery().close();
            }
            return null;
        });
    }

    @Override
    public AutoCloseable listen(Set<Channel> channels, BiConsumer<Channel, String> onNotification, Runnable onReconnect) {
        Listener l = new Listener(channels, onNotification, onReconnect);
        l.thread = Thread.ofPlatform().daemon().name("pg-listen").start(l::run);
        try {
            // Work queued after this returns wakes this node: what the caller then reads of the queue misses nothing.
            if (!l.listening.await(2L * PostgresDatabase.CONNECT_TIMEOUT_SECONDS, java.util.concurrent.TimeUnit.SECONDS)) {
                LOG.warn("the database notification session is not open yet; going on (it says when it is)");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return l;
    }

    /** How often the LISTEN session is checked with a query, and how long that query may take. */
    static final long CHECK_NANOS = 5_000_000_000L;
    static final int CHECK_TIMEOUT_SECONDS = 5;

    /** Sessions the notification listener opened after losing one (for tests and logs). */
    private final java.util.concurrent.atomic.AtomicInteger reconnects = new java.util.concurrent.atomic.AtomicInteger();

    int listenReconnects() {
        return reconnects.get();
    }

    /** One LISTEN session; a lost connection is opened again (after a second), then {@code onReconnect} runs. */
    private final class Listener implements AutoCloseable {
        private final Set<Channel> channels;
        private final BiConsumer<Channel, String> onNotification;
        private final Runnable onReconnect;
        private volatile boolean closed;
        private volatile Connection connection;
        final java.util.concurrent.CountDownLatch listening = new java.util.concurrent.CountDownLatch(1);
        Thread thread;

        Listener(Set<Channel> channels, BiConsumer<Channel, String> onNotification, Runnable onReconnect) {
            this.channels = channels;
            this.onNotification = onNotification;
            this.onReconnect = onReconnect;
        }

        void run() {
            boolean first = true;
            while (!closed) {
                try (Connection c = db.dedicatedConnection()) {
                    connection = c;
                    try (Statement s = c.createStatement()) {
                        for (Channel ch : channels) s.execute("LISTEN " + ch.pgName);
                    }
                    listening.countDown();
                    if (!first) {
                        reconnects.incrementAndGet();
                        LOG.info("database notification session open again");
                        onReconnect.run();
                    }
                    first = false;
                    PGConnection pg = c.unwrap(PGConnection.class);
                    long checked = System.nanoTime();
                    while (!closed) {
                        PGNotification[] got = pg.getNotifications(1000);
                        if (System.nanoTime() - checked > CHECK_NANOS) {
                            // A session the network dropped without a word (no FIN, no RST) never fails a wait for
                            // notifications: a query with a bounded wait does, and the session is opened again.
                            checked = System.nanoTime();
                            try (Statement s = c.createStatement()) {
                                s.setQueryTimeout(CHECK_TIMEOUT_SECONDS);
                                s.execute("SELECT 1");
                            }
                        }
                        if (got == null) continue;
                        for (PGNotification n : got) {
                            for (Channel ch : channels) {
                                if (!ch.pgName.equals(n.getName())) continue;
                                try {
                                    onNotification.accept(ch, n.getParameter());
                                } catch (RuntimeException e) {
                                    LOG.warn("handling a {} notification failed", ch, e);
                                }
                            }
                        }
                    }
                } catch (SQLException | RuntimeException e) {
                    if (closed) return;
                    LOG.warn("lost the database notification session ({}); reconnecting", e.getMessage());
                    first = false;
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }
        }

        @Override
        public void close() {
            closed = true;
            Connection c = connection;
            if (c != null) {
                try {
                    c.close();
                } catch (SQLException ignored) {
                    // closing anyway
                }
            }
            if (thread != null) {
                try {
                    thread.join(3000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}

package dev.contree.operations;

import java.time.Duration;
import java.util.Set;

/**
 * A node's part in a cluster (PostgreSQL only; a single node is {@link Role#ALL} on SQLite).
 *
 * @param role     what the node does
 * @param lease    how long a worker's claim on an operation lasts without a heartbeat (renewed every third of it):
 *                 the longest a dead worker's operations stay EXECUTING
 * @param workerId the worker's name in the queue's leases; null: the one kept in the data dir
 * @param apiUrl   where other nodes reach this node's HTTP API (to route a live instance's subprocess calls to it);
 *                 null: {@code http://} the listen address (its host name when it listens on every address)
 * @param kinds    what a worker claims: executions, imports or both (pools of import nodes beside execution nodes)
 */
public record ClusterSettings(Role role, Duration lease, String workerId, String apiUrl, Set<OperationKind> kinds) {
    public static final Duration DEFAULT_LEASE = Duration.ofSeconds(30);
    public static final ClusterSettings SINGLE = new ClusterSettings(Role.ALL, DEFAULT_LEASE, null, null, null);

    public ClusterSettings(Role role, Duration lease, String workerId) {
        this(role, lease, workerId, null, null);
    }

    /** {@code serve --role}. */
    public enum Role {
        /** Serves HTTP and queues work; never runs sandboxes or imports. */
        API,
        /** Claims and runs work; also serves HTTP (the whole API, like any node). */
        WORKER,
        /** Both (the single-node default). */
        ALL;

        public boolean runsWork() {
            return this != API;
        }
    }

    public ClusterSettings {
        if (role == null) role = Role.ALL;
        if (lease == null) lease = DEFAULT_LEASE;
        if (lease.toMillis() < 1000) throw new IllegalArgumentException("lease timeout must be at least 1 s");
        if (workerId != null && !workerId.matches("[A-Za-z0-9._:-]{1,100}"))
            throw new IllegalArgumentException("worker id must be 1-100 letters, digits or ._:-");
        if (apiUrl != null && !apiUrl.matches("https?://[^\\s/?#]+/?"))
            throw new IllegalArgumentException("advertised URL must be http(s)://host:port, got '" + apiUrl + "'");
        if (apiUrl != null && apiUrl.endsWith("/")) apiUrl = apiUrl.substring(0, apiUrl.length() - 1);
        kinds = kinds == null ? Set.of(OperationKind.values()) : Set.copyOf(kinds);
        if (kinds.isEmpty()) throw new IllegalArgumentException("a worker must claim at least one kind of operation");
    }

    public ClusterSettings withWorkerId(String id) {
        return new ClusterSettings(role, lease, id, apiUrl, kinds);
    }

    /** This worker claims only operations of these kinds. */
    public ClusterSettings withKinds(Set<OperationKind> claimed) {
        return new ClusterSettings(role, lease, workerId, apiUrl, claimed);
    }

    /** {@code instance,image_import} (the operation kinds as the API names them) → kinds; a bad name is refused. */
    public static Set<OperationKind> parseKinds(String list) {
        Set<OperationKind> out = java.util.EnumSet.noneOf(OperationKind.class);
        for (String name : list.split(",")) {
            OperationKind k = OperationKind.parse(name.strip());
            if (k == null) throw new IllegalArgumentException("unknown operation kind '" + name.strip() + "': use instance, image_import");
            out.add(k);
        }
        return out;
    }
}

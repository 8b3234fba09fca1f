package dev.contree.server;

import dev.contree.store.MetadataStore;
import dev.contree.store.StoreException;
import dev.contree.store.postgres.PostgresStore;
import dev.contree.store.postgres.PostgresUrl;
import dev.contree.store.sqlite.SqliteStore;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * Which metadata store serves a data dir: SQLite in the data dir ({@code contree.db}, the default) or a PostgreSQL
 * database. The data dir's layers and files are indexed in that store only, and a store that does not know them
 * takes them for garbage, so a data dir served with PostgreSQL names its database in the file {@value #MARKER}, and
 * a server or command pointed at another store is refused, saying which one the data dir belongs to.
 */
public final class MetadataStores {
    /** In the data dir: {@code postgresql://host:port/database} of the store it belongs to; absent: SQLite. */
    public static final String MARKER = "metadata-store";
    static final String SQLITE_FILE = "contree.db";

    private MetadataStores() {}

    /**
     * Opens the data dir's store for a serving server: SQLite when {@code database} is null, else the database, after
     * checking (and on first use recording) that the data dir belongs to it, and claiming it for this server.
     */
    public static MetadataStore openForServer(Path data, PostgresUrl database) throws IOException {
        return openForServer(data, database, false);
    }

    /**
     * @param shared the database is shared with other nodes (they share an object store): no claim is taken. Until
     *               the queue is in PostgreSQL each node runs what it was sent, and its start-up recovery fails every
     *               operation left active in the database, other nodes' running ones included (docs/cluster.md)
     */
    public static MetadataStore openForServer(Path data, PostgresUrl database, boolean shared) throws IOException {
        checkBelongs(data, database);
        if (database == null) return SqliteStore.open(data.resolve(SQLITE_FILE));
        PostgresStore store = PostgresStore.open(database);
        try {
            if (!shared && !store.claimForServer()) {
                throw new StoreException("another ConTree server is serving from " + database + ": until operations are queued"
                        + " in PostgreSQL, one server per database (it fails what it finds unfinished at start as interrupted)");
            }
            record(data, database);
            return store;
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    /**
     * Opens a store for a command beside the server (tokens): the database when one is given (the data dir is not
     * touched), else the data dir's SQLite file, unless the data dir belongs to a PostgreSQL database.
     */
    public static MetadataStore openForCommand(Path data, PostgresUrl database) throws IOException {
        if (database != null) return PostgresStore.open(database);
        Optional<String> recorded = recorded(data);
        if (recorded.isPresent()) {
            throw new StoreException("the metadata of data dir " + data + " is in " + recorded.get() + ": pass --database (or CONTREE_DATABASE)");
        }
        return SqliteStore.open(DataDir.prepare(data).resolve(SQLITE_FILE));
    }

    /** The PostgreSQL database the data dir belongs to, if it belongs to one. */
    public static Optional<String> recorded(Path data) throws IOException {
        Path marker = data.resolve(MARKER);
        if (!Files.exists(marker)) return Optional.empty();
        return Optional.of(Files.readString(marker, StandardCharsets.UTF_8).strip());
    }

    /** Refuses a store the data dir does not belong to. */
    static void checkBelongs(Path data, PostgresUrl database) throws IOException {
        Optional<String> recorded = recorded(data);
        String wanted = database == null ? null : identity(database);
        if (recorded.isPresent() && !recorded.get().equals(wanted)) {
            throw new StoreException("data dir " + data + " belongs to the metadata store " + recorded.get() + ", which indexes its layers"
                    + " and files; serve it with --database " + recorded.get() + " (user and password as there), or use another data dir"
                    + " (a new database's address: edit " + data.resolve(MARKER) + ")");
        }
        if (recorded.isEmpty() && database != null && Files.exists(data.resolve(SQLITE_FILE))) {
            throw new StoreException("data dir " + data + " keeps its metadata in " + SQLITE_FILE + " (SQLite), which indexes its layers"
                    + " and files: serve it without --database, or serve " + database + " from another data dir");
        }
    }

    private static String identity(PostgresUrl database) {
        return "postgresql://" + database.location();
    }

    private static void record(Path data, PostgresUrl database) throws IOException {
        Path marker = data.resolve(MARKER);
        if (Files.exists(marker)) return;
        Path tmp = data.resolve(MARKER + ".tmp");
        Files.writeString(tmp, identity(database) + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, marker, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}

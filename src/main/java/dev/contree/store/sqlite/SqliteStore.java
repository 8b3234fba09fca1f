package dev.contree.store.sqlite;

import dev.contree.store.jdbc.JdbcStore;
import dev.contree.store.jdbc.Sql;

import java.nio.file.Path;
import java.util.Optional;

/**
 * The metadata store in one embedded SQLite file (WAL): see {@link Database} for its connections and
 * {@link Migrations} for its schema. Everything SQLite-specific stays in this package.
 */
public final class SqliteStore extends JdbcStore {
    private final Database db;

    private SqliteStore(Database db) {
        super(db, new SqliteOperations(db));
        this.db = db;
    }

    /** Opens (creating it if needed) and migrates the database at {@code file}. */
    public static SqliteStore open(Path file) {
        return new SqliteStore(Database.open(file));
    }

    /**
     * Opens an existing database without changing anything on disk (for fsck); refuses a schema version other
     * than {@link #schemaVersion()}. Every write fails.
     */
    public static SqliteStore openReadOnly(Path file) {
        return new SqliteStore(Database.openReadOnly(file));
    }

    /** The schema version this code writes and expects. */
    public static int schemaVersion() {
        return Migrations.SCHEMA.current();
    }

    @Override
    public Optional<String> integrityProblem() {
        String result = db.read(c -> Sql.one(c, "PRAGMA integrity_check", rs -> rs.getString(1)));
        return "ok".equals(result) ? Optional.empty() : Optional.of(String.valueOf(result));
    }
}

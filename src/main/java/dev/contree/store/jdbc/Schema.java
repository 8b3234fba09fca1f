package dev.contree.store.jdbc;

import dev.contree.store.StoreException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;

/**
 * A versioned schema: SQL scripts under one resource folder, applied in order, each once, the versions applied
 * recorded in {@code schema_version}; append only. Scripts hold plain statements separated by {@code ;} at a line's end.
 */
public final class Schema {
    private final String folder;
    private final List<String> scripts;

    /** @param folder the resource folder, e.g. {@code /db/}; {@code scripts} in the order they apply */
    public Schema(String folder, String... scripts) {
        this.folder = folder;
        this.scripts = List.of(scripts);
    }

    /** The schema version this code writes and expects. */
    public int current() {
        return scripts.size();
    }

    /** The version recorded in the database; fails if it has no version table. */
    public static int recorded(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); var rs = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
            return rs.next() ? rs.getInt(1) : 0;
        }
    }

    /** Brings the schema up to {@link #current()}, inside the caller's transaction. */
    public void apply(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        }
        int from = recorded(c);
        if (from > current()) {
            throw new StoreException("database schema version " + from + " is newer than this server understands (" + current() + ")");
        }
        for (int v = from + 1; v <= current(); v++) {
            try (Statement s = c.createStatement()) {
                for (String statement : script(scripts.get(v - 1)).split(";\\s*\\n")) {
                    if (!statement.isBlank()) s.execute(statement);
                }
            }
            Sql.update(c, "INSERT INTO schema_version (version) VALUES (?)", v);
        }
    }

    /** A script without its comment lines. */
    private String script(String name) {
        try (InputStream in = Schema.class.getResourceAsStream(folder + name)) {
            if (in == null) throw new StoreException("missing migration " + folder + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    .lines().filter(l -> !l.trim().startsWith("--")).reduce("", (a, b) -> a + b + "\n");
        } catch (IOException e) {
            throw new StoreException("cannot read migration " + folder + name, e);
        }
    }
}

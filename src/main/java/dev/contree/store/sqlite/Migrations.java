package dev.contree.store.sqlite;

import dev.contree.store.StoreException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/** The versioned schema: scripts under {@code /db/}, applied in order, each once; append only. */
final class Migrations {
    private static final String[] SCRIPTS = {"V1__init.sql", "V2__layers.sql", "V3__digest_proofs.sql", "V4__image_layers.sql"};

    private Migrations() {}

    /** The schema version this code writes and expects. */
    static int current() {
        return SCRIPTS.length;
    }

    /** The version recorded in the database; fails if it has no version table. */
    static int recorded(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); var rs = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
            return rs.next() ? rs.getInt(1) : 0;
        }
    }

    /** Brings the schema up to {@link #current()}, inside the caller's transaction. */
    static void apply(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        }
        int from = recorded(c);
        if (from > SCRIPTS.length) {
            throw new StoreException("database schema version " + from + " is newer than this server understands (" + SCRIPTS.length + ")");
        }
        for (int v = from + 1; v <= SCRIPTS.length; v++) {
            try (Statement s = c.createStatement()) {
                for (String statement : script(SCRIPTS[v - 1]).split(";\\s*\\n")) {
                    if (!statement.isBlank()) s.execute(statement);
                }
            }
            Sql.update(c, "INSERT INTO schema_version (version) VALUES (?)", v);
        }
    }

    /** A script without its comment lines. */
    static String script(String name) {
        try (InputStream in = Migrations.class.getResourceAsStream("/db/" + name)) {
            if (in == null) throw new StoreException("missing migration " + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8)
                    .lines().filter(l -> !l.trim().startsWith("--")).reduce("", (a, b) -> a + b + "\n");
        } catch (IOException e) {
            throw new StoreException("cannot read migration " + name, e);
        }
    }
}

package dev.contree.store.postgres;

import dev.contree.TestPostgres;
import dev.contree.store.MetadataStore;
import dev.contree.store.StoreContractTest;
import dev.contree.store.StoreException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The store contract on a real PostgreSQL 15 server started for this class ({@link TestPostgres}): a new database
 * for each test. Beside it, what only PostgreSQL has: nodes migrating at once, its integrity check, its URL.
 */
class PostgresStoreTest extends StoreContractTest {
    static TestPostgres pg;
    String url;

    @BeforeAll
    static void startPostgres() throws Exception {
        pg = TestPostgres.start();
    }

    @AfterAll
    static void stopPostgres() throws Exception {
        if (pg != null) pg.close();
    }

    @Override
    protected void createDatabase() throws Exception {
        url = pg.createDatabase();
    }

    @Override
    protected MetadataStore open() {
        return PostgresStore.open(PostgresUrl.parse(url, null));
    }

    @Override
    protected void dropDatabase() throws Exception {
        pg.dropDatabase(url);
    }

    @Test
    void nodesStartingAtOnceMigrateOnce() throws Exception {
        String fresh = pg.createDatabase();
        try {
            List<PostgresStore> stores = concurrently(6, i -> PostgresStore.open(PostgresUrl.parse(fresh, null)));
            stores.forEach(PostgresStore::close);
            try (Connection c = pg.connect(TestPostgres.name(fresh)); Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT version FROM schema_version ORDER BY version")) {
                List<Integer> versions = new ArrayList<>();
                while (rs.next()) versions.add(rs.getInt(1));
                assertThat(versions).isEqualTo(java.util.stream.IntStream.rangeClosed(1, PostgresStore.schemaVersion()).boxed().toList());
            }
        } finally {
            pg.dropDatabase(fresh);
        }
    }

    @Test
    void aSchemaNewerThanThisServerIsRefused() throws Exception {
        store.close();
        store = null;
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement()) {
            s.execute("INSERT INTO schema_version (version) VALUES (" + (PostgresStore.schemaVersion() + 1) + ")");
        }
        assertThatThrownBy(this::open).isInstanceOf(StoreException.class).hasMessageContaining("newer than this server understands");
    }

    @Test
    void theIntegrityCheckFindsAnInvalidIndexAndRunsAmcheck() throws Exception {
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement()) {
            s.execute("CREATE EXTENSION amcheck");
        }
        assertThat(store.integrityProblem()).isEmpty();
        try (Connection c = pg.connect(TestPostgres.name(url)); Statement s = c.createStatement()) {
            // What a CREATE INDEX CONCURRENTLY that failed leaves behind.
            s.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'files_by_time'::regclass");
        }
        assertThat(store.integrityProblem()).contains("index files_by_time is invalid");
    }

    @Test
    void aServerThatIsNotThereIsNamedInTheError() {
        String nowhere = "postgresql://contree:secret@127.0.0.1:1/contree";
        assertThatThrownBy(() -> PostgresStore.open(PostgresUrl.parse(nowhere, null))).isInstanceOf(StoreException.class)
                .hasMessageContaining("postgresql://contree@127.0.0.1:1/contree").hasMessageNotContaining("secret");
    }

    @Test
    void oneServerAtATimeClaimsTheDatabase() {
        PostgresStore first = (PostgresStore) store;
        assertThat(first.claimForServer()).isTrue();
        try (PostgresStore second = PostgresStore.open(PostgresUrl.parse(url, null))) {
            assertThat(second.claimForServer()).isFalse();
            // What needs no claim still works beside the server.
            assertThat(second.tokens().register("h-cli", "alice", "cli", null).accountName()).isEqualTo("alice");
            first.close();
            store = open();
            assertThat(second.claimForServer()).isTrue(); // the first server's session ended, and its claim with it
        }
    }
}

package dev.contree.store.sqlite;

import dev.contree.store.MetadataStore;
import dev.contree.store.StoreContractTest;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

/** The store contract on SQLite: a new database file in a temp dir for each test. */
class SqliteStoreTest extends StoreContractTest {
    @TempDir Path dir;

    @Override
    protected void createDatabase() {}

    @Override
    protected MetadataStore open() {
        return SqliteStore.open(dir.resolve("contree.db"));
    }
}

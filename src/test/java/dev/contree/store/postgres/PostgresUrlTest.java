package dev.contree.store.postgres;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PostgresUrlTest {
    @Test
    void aUrlBecomesTheDriversUrlUserAndPassword() {
        PostgresUrl u = PostgresUrl.parse("postgresql://alice:p%40ss%3Aw%2Frd+x@db.example:6543/meta?sslmode=verify-full", null);
        assertThat(u.jdbcUrl()).isEqualTo("jdbc:postgresql://db.example:6543/meta?sslmode=verify-full");
        assertThat(u.user()).isEqualTo("alice");
        assertThat(u.password()).isEqualTo("p@ss:w/rd+x");
        assertThat(u.display()).isEqualTo("postgresql://alice@db.example:6543/meta");
        assertThat(u.location()).isEqualTo("db.example:6543/meta");
        assertThat(u.toString()).doesNotContain("p%40ss").doesNotContain("p@ss");
    }

    @Test
    void thePortDefaultsAndPGPASSWORDFillsIn() {
        PostgresUrl u = PostgresUrl.parse("postgres://bob@[::1]/contree", "from-env");
        assertThat(u.jdbcUrl()).isEqualTo("jdbc:postgresql://[::1]:5432/contree");
        assertThat(u.password()).isEqualTo("from-env");
        assertThat(PostgresUrl.parse("postgresql://bob:given@h/db", "from-env").password()).isEqualTo("given");
        assertThat(PostgresUrl.parse("postgresql://h/db", null).user()).isNull();
    }

    @Test
    void whatIsMissingIsSaid() {
        assertThatThrownBy(() -> PostgresUrl.parse("mysql://h/db", null)).hasMessageContaining("unsupported database URL scheme 'mysql'");
        assertThatThrownBy(() -> PostgresUrl.parse("postgresql://h", null)).hasMessageContaining("names no database");
        assertThatThrownBy(() -> PostgresUrl.parse("postgresql://h/a/b", null)).hasMessageContaining("names no database");
        assertThatThrownBy(() -> PostgresUrl.parse("postgresql:///db", null)).hasMessageContaining("names no host");
        assertThatThrownBy(() -> PostgresUrl.parse("postgresql://h:x/db", null)).isInstanceOf(IllegalArgumentException.class);
    }
}

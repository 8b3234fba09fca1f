package dev.contree.store.postgres;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/**
 * A PostgreSQL database as an operator names it, {@code postgresql://user:password@host:port/database?param=value}
 * (libpq's URI form; {@code postgres://} too), turned into what the JDBC driver takes. Parameters after {@code ?} go to
 * the driver as they are (e.g. {@code sslmode=verify-full}, {@code currentSchema=contree}).
 *
 * @param jdbcUrl  the driver's URL, without user or password
 * @param user     null: the driver's default
 * @param password null: none (trust or peer authentication)
 * @param location {@code host:port/database}: which database this is, whoever connects to it
 */
public record PostgresUrl(String jdbcUrl, String user, String password, String location) {
    public static final int DEFAULT_PORT = 5432;

    /** The database as logs and messages show it: no password, no parameters. */
    public String display() {
        return "postgresql://" + (user == null ? "" : user + "@") + location;
    }

    @Override
    public String toString() {
        return display();
    }

    /**
     * Parses {@code url}; {@code fallbackPassword} (from {@code PGPASSWORD}, so a password need not stand on a command
     * line) applies when the URL has none. Throws {@link IllegalArgumentException} saying what is wrong.
     */
    public static PostgresUrl parse(String url, String fallbackPassword) {
        URI u;
        try {
            u = new URI(url.strip());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("not a database URL: " + e.getReason() + " (expected postgresql://user:password@host:port/database)");
        }
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(java.util.Locale.ROOT);
        if (!scheme.equals("postgresql") && !scheme.equals("postgres")) {
            throw new IllegalArgumentException("unsupported database URL scheme '" + u.getScheme()
                    + "': expected postgresql://user:password@host:port/database");
        }
        if (u.getHost() == null || u.getHost().isEmpty()) {
            throw new IllegalArgumentException("the database URL names no host: expected postgresql://user:password@host:port/database");
        }
        String path = u.getRawPath() == null ? "" : u.getRawPath();
        if (path.length() < 2 || path.indexOf('/', 1) >= 0) {
            throw new IllegalArgumentException("the database URL names no database: expected postgresql://user:password@host:port/database");
        }
        String user = null, password = null;
        String info = u.getRawUserInfo();
        if (info != null) {
            int colon = info.indexOf(':');
            user = decode(colon < 0 ? info : info.substring(0, colon));
            if (colon >= 0) password = decode(info.substring(colon + 1));
            if (user.isEmpty()) user = null;
        }
        if (password == null && fallbackPassword != null && !fallbackPassword.isEmpty()) password = fallbackPassword;
        int port = u.getPort() < 0 ? DEFAULT_PORT : u.getPort();
        String hostPort = u.getHost() + ":" + port;
        String jdbc = "jdbc:postgresql://" + hostPort + path + (u.getRawQuery() == null ? "" : "?" + u.getRawQuery());
        return new PostgresUrl(jdbc, user, password, hostPort + "/" + decode(path.substring(1)));
    }

    /** Percent-decoding as URIs mean it ({@code +} stays a plus). */
    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }
}

package dev.contree.store.sqlite;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.TestServer;
import dev.contree.operations.OperationKind;
import dev.contree.store.codec.OperationCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Operations and events stored by the server before the domain spoke types (metadata and event data written as the
 * wire showed them) read back as the same values and render as the same bytes.
 *
 * <p>{@code operations-v2-rows.jsonl} holds real rows of such a server (an import, failed imports with credentials,
 * executions with files, env, binary stdin and output, truncation, a size cap, a timeout); {@code
 * operations-v2-wire.txt} holds what that server answered for each of them.
 */
class StoredOperationsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path dir;

    record Row(String table, Map<String, Object> values) {}

    static List<Row> rows() throws IOException {
        List<Row> out = new ArrayList<>();
        try (InputStream in = StoredOperationsTest.class.getResourceAsStream("operations-v2-rows.jsonl")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank()) continue;
                JsonNode o = JSON.readTree(line);
                String table = o.fieldNames().next();
                @SuppressWarnings("unchecked")
                Map<String, Object> values = JSON.convertValue(o.get(table), Map.class);
                out.add(new Row(table, values));
            }
        }
        return out;
    }

    /** Inserts the old rows into the running server's database file with plain SQL, all in the given account. */
    static void insert(Path database, String accountId, List<Row> rows) throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + database)) {
            c.createStatement().execute("PRAGMA busy_timeout=10000");
            for (Row row : rows) {
                List<String> columns = new ArrayList<>(row.values().keySet());
                List<Object> values = new ArrayList<>(row.values().values());
                if (row.table().equals("operations")) {
                    columns.add("account_id");
                    values.add(accountId);
                }
                String sql = "INSERT INTO " + row.table() + " (" + String.join(",", columns) + ") VALUES ("
                        + String.join(",", columns.stream().map(x -> "?").toList()) + ")";
                try (PreparedStatement st = c.prepareStatement(sql)) {
                    for (int i = 0; i < values.size(); i++) st.setObject(i + 1, values.get(i));
                    st.executeUpdate();
                }
            }
        }
    }

    /** Every operation's GET body and event stream, oldest first, as the server answers them. */
    static String render(TestServer s, List<Row> rows) {
        StringBuilder out = new StringBuilder();
        for (Row row : rows) {
            if (!row.table().equals("operations")) continue;
            String uuid = (String) row.values().get("uuid");
            out.append("GET ").append(uuid).append('\n').append(s.get(s.tokenA, "/v1/operations/" + uuid).text()).append('\n');
            out.append("EVENTS ").append(uuid).append('\n').append(s.get(s.tokenA, "/v1/operations/" + uuid + "/events").text());
        }
        out.append("LIST\n").append(s.get(s.tokenA, "/v1/operations?limit=100").text()).append('\n');
        return out.toString();
    }

    @Test
    void oldRowsRenderAsTheyDid() throws Exception {
        List<Row> rows = rows();
        try (TestServer s = new TestServer(dir.resolve("data"))) {
            insert(s.dataDir.resolve("contree.db"), s.accountA, rows);
            String rendered = render(s, rows);
            String expected;
            try (InputStream in = StoredOperationsTest.class.getResourceAsStream("operations-v2-wire.txt")) {
                expected = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            if (System.getProperty("contree.write.fixture") != null) Files.writeString(Path.of(System.getProperty("contree.write.fixture")), rendered);
            assertThat(rendered).isEqualTo(expected);
            // The metadata is what was stored, byte for byte (the old server showed the stored text).
            for (Row row : rows) {
                if (!row.table().equals("operations")) continue;
                String body = s.get(s.tokenA, "/v1/operations/" + row.values().get("uuid")).text();
                assertThat(body).contains("\"metadata\":" + row.values().get("metadata") + ",\"result\":");
            }
        }
    }

    /**
     * A row read back and written again (as the server does when an operation finishes) takes this server's format
     * ({@code "v": 2}, see {@link OperationCodecTest}) and keeps every value the old row held.
     */
    @Test
    void storedFormsReadAndWriteBackAsTheSameValues() throws Exception {
        int metadata = 0, events = 0;
        for (Row row : rows()) {
            Map<String, Object> v = row.values();
            if (row.table().equals("operations")) {
                OperationKind kind = OperationKind.parse((String) v.get("kind"));
                OperationCodec.Metadata m = OperationCodec.metadata(kind, (String) v.get("metadata"));
                String rewritten = OperationCodec.metadata(m.request(), m.result());
                assertThat(rewritten).startsWith("{\"v\":2,");
                OperationCodec.Metadata again = OperationCodec.metadata(kind, rewritten);
                assertThat(again).usingRecursiveComparison().isEqualTo(m);
                assertThat(OperationCodec.metadata(again.request(), again.result())).isEqualTo(rewritten);
                metadata++;
            } else {
                String type = (String) v.get("type"), text = (String) v.get("data");
                var payload = OperationCodec.event(type, text);
                assertThat(payload.type()).isEqualTo(type);
                String rewritten = OperationCodec.eventData(payload);
                assertThat(rewritten).startsWith("{\"v\":2,");
                assertThat(OperationCodec.event(type, rewritten)).usingRecursiveComparison().isEqualTo(payload);
                assertThat(OperationCodec.eventData(OperationCodec.event(type, rewritten))).isEqualTo(rewritten);
                events++;
            }
        }
        assertThat(metadata).isEqualTo(12);
        assertThat(events).isEqualTo(60);
    }

    /** The same rows in this server's format answer exactly as the old rows do, metadata still the old stored text. */
    @Test
    void rowsRewrittenInTheCurrentFormatRenderTheSame() throws Exception {
        List<Row> old = rows(), rewritten = new ArrayList<>();
        for (Row row : old) {
            Map<String, Object> v = new LinkedHashMap<>(row.values());
            if (row.table().equals("operations")) {
                OperationCodec.Metadata m = OperationCodec.metadata(OperationKind.parse((String) v.get("kind")), (String) v.get("metadata"));
                v.put("metadata", OperationCodec.metadata(m.request(), m.result()));
            } else {
                v.put("data", OperationCodec.eventData(OperationCodec.event((String) v.get("type"), (String) v.get("data"))));
            }
            rewritten.add(new Row(row.table(), v));
        }
        try (TestServer s = new TestServer(dir.resolve("data"))) {
            insert(s.dataDir.resolve("contree.db"), s.accountA, rewritten);
            String expected;
            try (InputStream in = StoredOperationsTest.class.getResourceAsStream("operations-v2-wire.txt")) {
                expected = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            assertThat(render(s, rewritten)).isEqualTo(expected);
            for (Row row : old) {
                if (!row.table().equals("operations")) continue;
                String body = s.get(s.tokenA, "/v1/operations/" + row.values().get("uuid")).text();
                assertThat(body).contains("\"metadata\":" + row.values().get("metadata") + ",\"result\":");
            }
        }
    }
}

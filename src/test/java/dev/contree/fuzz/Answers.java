package dev.contree.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import dev.contree.TestServer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.assertj.core.api.Assertions.assertThat;

/** The properties every hostile request must satisfy, and a snapshot of what a data dir holds. */
final class Answers {
    private Answers() {}

    /** Never 5xx; an error is JSON {"error": non-empty string, "status": same code}; HEAD has no body. */
    static RawHttp.Response wellFormed(RawHttp.Response r, String method) {
        assertThat(r.status()).as("no 5xx: %s", r).isLessThan(500).isGreaterThanOrEqualTo(200);
        if (method.equals("HEAD") && (r.body().length == 0 || !jettyFramingError(r))) {
            assertThat(r.body()).as("HEAD has no body: %s", r).isEmpty();
            return r;
        }
        if (r.status() >= 400) {
            assertThat(r.header("Content-Type")).as("error content type: %s", r).startsWith("application/json");
            JsonNode j = r.json();
            assertThat(j).as("error body is JSON: %s", r).isNotNull();
            assertThat(j.isObject()).as("error body is an object: %s", r).isTrue();
            assertThat(j.path("error").isTextual() && !j.path("error").asText().isBlank()).as("error message: %s", r).isTrue();
            assertThat(j.path("status").asInt()).as("status field: %s", r).isEqualTo(r.status());
        }
        return r;
    }

    /**
     * Jetty rejects a request whose URI it cannot accept (e.g. {@code %00} in the path) before routing,
     * as a synthetic "BAD /badMessage" request that has lost the method, and then closes the connection
     * (checked in {@code HostileInputFuzzTest.brokenFraming}): a HEAD gets the generic JSON error body, harmlessly.
     */
    static boolean jettyFramingError(RawHttp.Response r) {
        return r.status() >= 400 && r.status() < 500 && "close".equalsIgnoreCase(r.header("Connection"));
    }

    /** {@link #wellFormed} and a 4xx. */
    static RawHttp.Response rejected(RawHttp.Response r, String method) {
        wellFormed(r, method);
        assertThat(r.status()).as("rejected with 4xx: %s", r).isBetween(400, 499);
        return r;
    }

    /** What must not change when requests are rejected: per account images, files, operations; the blob store. */
    record Snapshot(List<String> state, List<String> blobs, List<String> tmp) {}

    static Snapshot snapshot(TestServer s, Path dataDir, String... tokens) throws IOException {
        List<String> state = new ArrayList<>();
        for (String t : tokens) {
            for (JsonNode i : s.get(t, "/v1/images?limit=1000").json().get("images")) {
                state.add(t.hashCode() + " image " + i.get("uuid").asText() + " tag=" + i.get("tag").asText() + " parent=" + i.get("parent_uuid").asText());
            }
            for (JsonNode f : s.get(t, "/v1/files?limit=1000").json().get("files")) {
                state.add(t.hashCode() + " file " + f.get("uuid").asText() + " " + f.get("sha256").asText());
            }
            for (JsonNode o : s.get(t, "/v1/operations?limit=1000").json()) {
                state.add(t.hashCode() + " op " + o.get("uuid").asText() + " " + o.get("status").asText() + " " + o.get("result_image_uuid").asText());
            }
        }
        state.sort(null);
        return new Snapshot(state, list(dataDir.resolve("blobs/sha256")), list(dataDir.resolve("blobs/tmp")));
    }

    private static List<String> list(Path dir) throws IOException {
        if (!Files.exists(dir)) return List.of();
        try (var walk = Files.walk(dir)) {
            return new ArrayList<>(walk.filter(Files::isRegularFile).map(p -> dir.relativize(p).toString())
                    .collect(java.util.stream.Collectors.toCollection(TreeSet::new)));
        }
    }
}

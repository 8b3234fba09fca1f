package dev.contree.sandbox;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class JsonWriterTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Pair(String name, Long count, boolean on, List<Object> items) {}

    @Test
    void recordsAreObjectsInComponentOrderWithoutNulls() {
        assertThat(JsonWriter.toJson(new Pair("a", null, true, List.of(1, 2L, "x", false))))
            .isEqualTo("{\"name\":\"a\",\"on\":true,\"items\":[1,2,\"x\",false]}");
        assertThat(JsonWriter.toJson(List.of())).isEqualTo("[]");
        assertThat(JsonWriter.toJson(new Pair(null, -9_007_199_254_740_993L, false, List.of())))
            .isEqualTo("{\"count\":-9007199254740993,\"on\":false,\"items\":[]}");
    }

    @Test
    void specialCharactersAreEscapedPerRfc8259() {
        assertThat(JsonWriter.toJson("a\"b\\c/d")).isEqualTo("\"a\\\"b\\\\c/d\"");
        assertThat(JsonWriter.toJson("\n\r\t\b\f")).isEqualTo("\"\\n\\r\\t\\b\\f\"");
        assertThat(JsonWriter.toJson("\u0000\u0001\u001f\u007f")).isEqualTo("\"\\u0000\\u0001\\u001f\\u007f\"");
        assertThat(JsonWriter.toJson("é€")).isEqualTo("\"\\u00e9\\u20ac\"");
        assertThat(JsonWriter.toJson("😀")).isEqualTo("\"\\ud83d\\ude00\""); // a surrogate pair stays a pair
    }

    @Test
    void outputIsAsciiAndEveryCharacterRoundTrips() throws Exception {
        StringBuilder all = new StringBuilder();
        for (char c = 0; c < 0xd800; c++) all.append(c);
        for (char c = 0xe000; c != 0; c++) all.append(c);
        all.append("😀𝄞");
        String json = JsonWriter.toJson(all.toString());
        assertThat(json.chars().allMatch(c -> c >= 0x20 && c < 0x7f)).isTrue();
        assertThat(JSON.readTree(json).textValue()).isEqualTo(all.toString());
    }

    @Test
    void randomHostileStringsRoundTripInsideRecords() throws Exception {
        Random rnd = new Random(42);
        char[] alphabet = "\"\\/\u0000\n\r\t\u001b\u2028\u2029é€{}[]:,= $'`".toCharArray();
        for (int i = 0; i < 500; i++) {
            StringBuilder s = new StringBuilder();
            for (int n = rnd.nextInt(40); n > 0; n--) s.append(alphabet[rnd.nextInt(alphabet.length)]);
            String value = s.toString();
            JsonNode back = JSON.readTree(JsonWriter.toJson(new Pair(value, (long) i, true, List.of(value))));
            assertThat(back.get("name").textValue()).isEqualTo(value);
            assertThat(back.get("items").get(0).textValue()).isEqualTo(value);
            assertThat(back.get("count").longValue()).isEqualTo(i);
        }
    }

    @Test
    void whatHasNoJsonFormIsRefused() {
        assertThatThrownBy(() -> JsonWriter.toJson(1.5)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> JsonWriter.toJson(Map.of("k", "v"))).isInstanceOf(IllegalArgumentException.class);
    }

    /** The config.json of a spec whose env and paths are hostile reads back exactly, in the keys the OCI spec names. */
    @Test
    void configJsonOfAHostileSpecReadsBack() throws Exception {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("QUOTE", "\"},\"root\":{\"path\":\"/\"},\"x\":\"");
        env.put("CTRL", "a\u0001b\u001fc\nd\\e");
        env.put("UNICODE", "é😀\u2028");
        Path rootfs = Path.of("/tmp/we\"ird\\root\nfs");
        SandboxSpec spec = SandboxSpec.builder("hostile", rootfs, List.of("sh", "-c", "echo \"$QUOTE\""))
            .env(env).hostname("h\"ost").build();
        Path init = Path.of("/opt/contree/init");
        RuntimeSpec rs = OciSpecs.build(RuntimeConfig.defaults(RuntimeConfig.Kind.RUNSC, Path.of("/state")), spec, List.of(SandboxRuntime.INIT_PATH, "--", "sh"), init,
            "/contree/c", new OciSpecs.Limits(64 << 20, 64, 0.5), Path.of("/run/netns/n"), true);
        JsonNode c = JSON.readTree(OciSpecs.toJson(rs));

        List<String> envBack = new ArrayList<>();
        c.at("/process/env").forEach(n -> envBack.add(n.textValue()));
        List<String> expected = new ArrayList<>();
        env.forEach((k, v) -> expected.add(k + "=" + v));
        assertThat(envBack).containsExactlyInAnyOrderElementsOf(expected); // SandboxSpec keeps env unordered
        assertThat(c.at("/root/path").textValue()).isEqualTo(rootfs.toAbsolutePath().toString());
        assertThat(c.at("/hostname").textValue()).isEqualTo("h\"ost");
        assertThat(c.at("/process/user/uid").intValue()).isZero();
        assertThat(c.at("/process/noNewPrivileges").booleanValue()).isTrue();
        assertThat(c.at("/process/rlimits/0/type").textValue()).isEqualTo("RLIMIT_NPROC");
        assertThat(c.at("/linux/resources/memory/swap").longValue()).isEqualTo(64 << 20);
        assertThat(c.at("/linux/resources/cpu/quota").longValue()).isEqualTo(50_000);
        assertThat(c.at("/linux/resources/pids/limit").longValue())
            .isEqualTo(64 * OciSpecs.RUNSC_PIDS_FACTOR + OciSpecs.RUNSC_PIDS_OVERHEAD);
        JsonNode netns = c.at("/linux/namespaces").get(c.at("/linux/namespaces").size() - 1);
        assertThat(netns.get("type").textValue()).isEqualTo("network");
        assertThat(netns.get("path").textValue()).isEqualTo("/run/netns/n");
        assertThat(c.at("/linux/namespaces/0").has("path")).isFalse(); // a namespace to create has no path key
        assertThat(c.at("/mounts").findValuesAsText("destination")).contains("/tmp", SandboxRuntime.INIT_PATH);
        JsonNode cloneRule = c.at("/linux/seccomp/syscalls/2");
        assertThat(cloneRule.at("/names/0").textValue()).isEqualTo("clone");
        assertThat(cloneRule.at("/args/0/op").textValue()).isEqualTo("SCMP_CMP_MASKED_EQ");
        assertThat(cloneRule.at("/args/0/valueTwo").longValue()).isEqualTo(cloneRule.at("/args/0/value").longValue());
        assertThat(c.at("/linux/seccomp/syscalls/0").has("args")).isFalse();
    }

    /** x86_64 only unless the operator admits the i386 ABI, which only runc can serve. */
    @Test
    void seccompArchitectures() throws Exception {
        SandboxSpec spec = SandboxSpec.shell("arch", Path.of("/rootfs"), "true").build();
        for (RuntimeConfig.Kind k : List.of(RuntimeConfig.Kind.RUNSC, RuntimeConfig.Kind.RUNC)) {
            for (boolean compat : new boolean[] {false, true}) {
                RuntimeConfig cfg = RuntimeConfig.defaults(k, Path.of("/state")).withCompat32(compat);
                JsonNode c = JSON.readTree(OciSpecs.toJson(OciSpecs.build(cfg, spec, List.of("x"), Path.of("/init"), "/c",
                    new OciSpecs.Limits(1 << 20, 10, 0), null, false)));
                List<String> arches = new ArrayList<>();
                c.at("/linux/seccomp/architectures").forEach(n -> arches.add(n.textValue()));
                if (compat && k == RuntimeConfig.Kind.RUNC) assertThat(arches).containsExactly("SCMP_ARCH_X86_64", "SCMP_ARCH_X86");
                else assertThat(arches).as("%s compat %s", k, compat).containsExactly("SCMP_ARCH_X86_64");
            }
        }
    }

    /** runc has no rlimits entry and no swap limit where memsw accounting is missing. */
    @Test
    void runcSpecLeavesOutWhatDoesNotApply() throws Exception {
        SandboxSpec spec = SandboxSpec.shell("plain", Path.of("/rootfs"), "true").build();
        RuntimeSpec rs = OciSpecs.build(RuntimeConfig.defaults(RuntimeConfig.Kind.RUNC, Path.of("/state")), spec, List.of("x"), Path.of("/init"), "/c",
            new OciSpecs.Limits(1 << 20, 10, 0), null, false);
        JsonNode c = JSON.readTree(OciSpecs.toJson(rs));
        assertThat(c.at("/process").has("rlimits")).isFalse();
        assertThat(c.at("/linux/resources/memory").has("swap")).isFalse();
        assertThat(c.at("/linux/resources").has("cpu")).isFalse();
        assertThat(c.at("/linux/resources/pids/limit").longValue()).isEqualTo(10);
        assertThat(c.at("/linux/namespaces").findValuesAsText("type")).containsExactly("pid", "ipc", "uts", "mount", "network");
    }
}

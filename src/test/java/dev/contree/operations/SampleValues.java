package dev.contree.operations;

import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceSpec;
import dev.contree.sandbox.ResourceUsage;
import dev.contree.sandbox.SandboxResult;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Operation values for codec and wire tests: every field differs from its type's default (a dropped field reads
 * back as 0, false or null), output is binary, env has an unset entry.
 */
public final class SampleValues {
    /** Not printable ASCII: base64 on the wire. */
    public static final byte[] BINARY = {0, 1, (byte) 0xff, (byte) 0xc3, 0x28, '\n', 'a'};

    private SampleValues() {}

    public static ResourceUsage usage() {
        return new ResourceUsage(1.25, 0.5, 2048, 11, 12, 13, 14, 15, 16, 17, 18, 3.75, 4096, 2.5, 19, 20);
    }

    public static ExecutionRequest execution() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("PATH", "/usr/bin:/bin");
        env.put("UNSET_ME", null);
        env.put("Z_LAST", "\u00fcn\u00efcode \"quoted\"");
        Map<String, InstanceSpec.FileSpec> files = new LinkedHashMap<>();
        files.put("/etc/app.conf", new InstanceSpec.FileSpec("file-1", 0640, 1000, 1001));
        files.put("/usr/local/bin/run", new InstanceSpec.FileSpec("file-2", 04755, 0, 2));
        InstanceSpec spec = new InstanceSpec("printf", "tag:base", true, List.of("%s\\n", "two words"), env, true, "/work",
                "box", true, BINARY, 42, 777, files, 1000, 1001, 123456789, true, true);
        return new ExecutionRequest(spec, "image-uuid-1", false);
    }

    public static ExecutionResult result() {
        SandboxResult r = new SandboxResult(3, 9, true, true, 77, usage(), BINARY, true, 9000, "warn\n".getBytes(), true,
                8000, true, "exec failed", "infra failed");
        return new ExecutionResult(r, 65536);
    }

    public static ImportRequest importWithCredentials() {
        return new ImportRequest("docker://registry.example/app:1", "robot", "s3cret-token", "app", 600);
    }

    /** Each kind of payload at least once, some also with unknown figures or nulls. */
    public static List<EventPayload> everyPayload() {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("HOME", "/root");
        env.put("TOKEN", "<redacted>");
        return List.of(
                new EventPayload.Init(Instant.parse("2024-05-06T07:08:09.123456789Z"), "/.contree/init", true, 5),
                new EventPayload.Spawn(6, "sh", List.of("-c", "echo hi"), true, "/tmp", 1000, 1001, 30, 4096, env),
                new EventPayload.Output(EventPayload.Stream.STDOUT, BINARY),
                new EventPayload.Output(EventPayload.Stream.STDERR, "plain text\n".getBytes()),
                new EventPayload.Truncated(EventPayload.Stream.STDERR, 100, 23),
                new EventPayload.SizeCap(1 << 20, (1 << 20) + 1),
                new EventPayload.Exit(6, 2, 15, true, usage()),
                new EventPayload.Exit(7, 0, -1, false, ResourceUsage.UNKNOWN),
                new EventPayload.Shutdown(Instant.parse("2024-05-06T07:08:10Z"), EventPayload.Shutdown.Reason.CANCELLED),
                new EventPayload.Progress(1, 3, 4096, -1, 10_000),
                new EventPayload.Completion(OperationStatus.FAILED, "boom", 1500, "image-2", 8192),
                new EventPayload.Completion(OperationStatus.SUCCESS, null, 1500, null, 0));
    }
}

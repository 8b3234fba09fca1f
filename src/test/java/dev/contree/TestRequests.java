package dev.contree;

import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.InstanceSpec;

import java.util.List;
import java.util.Map;

/** Recorded requests for operations a test creates directly in the store (every field at its default). */
public final class TestRequests {
    private TestRequests() {}

    public static InstanceSpec spec(String command, String image) {
        return new InstanceSpec(command, image, false, List.of(), Map.of(), false, "", InstanceSpec.DEFAULT_HOSTNAME, false,
                new byte[0], InstanceSpec.DEFAULT_TIMEOUT, InstanceSpec.DEFAULT_TRUNCATE, Map.of(), 0, 0,
                InstanceSpec.DEFAULT_MAX_LAYER_BYTES, false, false);
    }

    /** An execution of {@code command} on {@code imageUuid} (may be null). */
    public static ExecutionRequest execution(String command, String imageUuid) {
        return ExecutionRequest.of(spec(command, imageUuid), imageUuid);
    }

    public static ImportRequest imageImport(String url) {
        return new ImportRequest(url, "", "", null, ImportRequest.DEFAULT_TIMEOUT);
    }
}

package dev.contree.instances;

import dev.contree.operations.OperationRequest;

/**
 * An execution's request as its operation records it: the validated spec on the resolved image. Stdin is kept only
 * up to {@link #MAX_KEPT_STDIN} bytes (bigger inputs are spooled for the run and not kept).
 *
 * <p>Read back from a row an older server wrote, a request holds only what the operation shows: the spec's
 * {@code imageRef} is the image uuid, unset ({@code null}) env entries and whether uid/gid were given are lost.
 *
 * @param stdinOmitted the request had more stdin than is kept; {@code spec.stdin()} is then empty
 */
public record ExecutionRequest(InstanceSpec spec, String imageUuid, boolean stdinOmitted) implements OperationRequest {
    public static final int MAX_KEPT_STDIN = 64 * 1024;

    public static ExecutionRequest of(InstanceSpec spec, String imageUuid) {
        return spec.stdin().length <= MAX_KEPT_STDIN ? new ExecutionRequest(spec, imageUuid, false)
                : new ExecutionRequest(spec.withoutStdin(), imageUuid, true);
    }
}

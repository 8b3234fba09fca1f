package dev.contree.operations;

import dev.contree.images.ImageService;

/** How a job ended: what the {@link Scheduler} records as the operation's outcome. */
public sealed interface JobOutcome {

    /**
     * The job did its work (an execution whose command failed still succeeded).
     *
     * @param image     the image it leaves
     * @param imageSize bytes the operation added (an execution's kept layer, an import's image)
     * @param usage     what the work consumed, or null when not measured (imports)
     * @param result    what the operation shows beyond status and image, or null
     */
    record Succeeded(ResultImage image, long imageSize, Usage usage, OperationResult result) implements JobOutcome {}

    /** Infrastructure or input failure; {@code reason} is shown to the client. */
    record Failed(String reason) implements JobOutcome {}

    /** Stopped before it finished (shutdown); a client's cancel is recorded when it is asked for. */
    record Cancelled(String reason) implements JobOutcome {}

    /** CPU seconds and peak memory (KiB) of a job's work. */
    record Usage(double cpuSeconds, long memoryKiB) {}

    /** The image a successful job leaves. */
    sealed interface ResultImage {}

    /** A new image, recorded in the same transaction as the outcome. */
    record Created(ImageService.NewImage image) implements ResultImage {}

    /** An existing image: an execution that changed nothing leaves its input image. */
    record Unchanged(String imageUuid) implements ResultImage {}

    /** None: a disposable execution keeps nothing. */
    record Discarded() implements ResultImage {}
}

package dev.contree.operations;

import dev.contree.imports.ImportRequest;
import dev.contree.instances.ExecutionRequest;
import dev.contree.instances.ExecutionResult;

import java.time.Instant;
import java.util.List;

/**
 * What a glance at an operation needs (the tree explorer's node): its state, the command it ran (an import's source)
 * and its exit state, without the rest of its request or its captured output, which may be MiBs. A store reads it
 * from the stored metadata without decoding that output.
 *
 * @param request    what was asked: an execution's command, args, shell and disposable; an import's url
 * @param exit       the sandbox's exit state once an execution has a result, else null
 */
public record OperationGlance(String uuid, String accountId, OperationKind kind, OperationStatus status, String imageUuid,
                              String resultImageUuid, Instant createdAt, String error, Request request, Exit exit) {

    /** The part of the request shown. */
    public sealed interface Request {}

    public record Execution(String command, List<String> args, boolean shell, boolean disposable) implements Request {}

    public record Import(String url) implements Request {}

    public record Exit(int exitCode, int signal, boolean timedOut) {}

    /** The glance of a fully read operation. */
    public static OperationGlance of(Operation op) {
        Request request = switch (op.request()) {
            case ExecutionRequest e -> new Execution(e.spec().command(), e.spec().args(), e.spec().shell(), e.spec().disposable());
            case ImportRequest i -> new Import(i.url());
            case null, default -> null;
        };
        Exit exit = op.result() instanceof ExecutionResult r
                ? new Exit(r.sandbox().exitCode(), r.sandbox().signal(), r.sandbox().timedOut()) : null;
        return new OperationGlance(op.uuid(), op.accountId(), op.kind(), op.status(), op.imageUuid(), op.resultImageUuid(),
                op.createdAt(), op.error(), request, exit);
    }
}

package dev.contree.instances;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/** The executions of this node that are running, by operation uuid: where subprocess calls find their sandbox. */
final class LiveInstances {
    private final Map<String, LiveInstance> running = new ConcurrentHashMap<>();

    void add(String operationUuid, LiveInstance instance) {
        running.put(operationUuid, instance);
    }

    void remove(String operationUuid) {
        running.remove(operationUuid);
    }

    Optional<LiveInstance> get(String operationUuid) {
        return Optional.ofNullable(running.get(operationUuid));
    }
}

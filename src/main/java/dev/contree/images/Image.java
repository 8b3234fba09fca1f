package dev.contree.images;

import java.time.Instant;
import java.util.List;

/**
 * An immutable filesystem snapshot: an ordered list of layers (top first) and the defaults
 * executions start from. {@code parentUuid} is the image it was derived from (null for imports).
 */
public record Image(String uuid, String accountId, String tag, Instant createdAt, String operationUuid,
                    String parentUuid, List<String> layers, ImageConfig config, long size) {}

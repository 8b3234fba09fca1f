package dev.contree.store.codec;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.images.ImageConfig;

/** An image's config, stored as JSON text (operations and events: {@link OperationCodec}). */
public final class JsonColumns {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonColumns() {}

    /** The same text the old code wrote, so an identical config compares equal in SQL. */
    public static String config(ImageConfig config) {
        return JSON.valueToTree(config).toString();
    }

    public static ImageConfig config(String json, String rowKey) {
        try {
            return JSON.readValue(json, ImageConfig.class);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("corrupt config of image " + rowKey, e);
        }
    }
}

package dev.contree.store.sqlite;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.contree.images.ImageConfig;

import java.sql.SQLException;

/** An image's config, stored as JSON text (operations and events: {@link OperationCodec}). */
final class JsonColumns {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonColumns() {}

    /** The same text the old code wrote, so an identical config compares equal in SQL. */
    static String config(ImageConfig config) {
        return JSON.valueToTree(config).toString();
    }

    static ImageConfig config(String json, String rowKey) throws SQLException {
        try {
            return JSON.readValue(json, ImageConfig.class);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SQLException("corrupt config of image " + rowKey, e);
        }
    }
}

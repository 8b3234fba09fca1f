package dev.contree.store.sqlite;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.images.ImageConfig;

import java.sql.SQLException;

/** The columns stored as JSON text: an image's config, an operation's metadata, an event's data. */
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

    static String object(ObjectNode node) {
        return node == null ? null : node.toString();
    }

    static ObjectNode object(String json, String rowKey) throws SQLException {
        try {
            if (JSON.readTree(json) instanceof ObjectNode o) return o;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SQLException("corrupt JSON in " + rowKey, e);
        }
        throw new SQLException("corrupt JSON in " + rowKey + ": not an object");
    }
}

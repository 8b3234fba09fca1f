-- An image's layers as rows, top first (position 0 is the top layer), instead of a JSON list in images.layers:
-- the garbage collector and fsck look a layer up by id, and every implementation reads them the same way.
CREATE TABLE image_layers (
  image_uuid  TEXT NOT NULL REFERENCES images(uuid),
  position    INTEGER NOT NULL,
  layer_id    TEXT NOT NULL,
  PRIMARY KEY (image_uuid, position)
);
CREATE INDEX image_layers_by_layer ON image_layers (layer_id);
-- The lists written before, moved in place: json_each numbers array elements from 0 in order.
INSERT INTO image_layers (image_uuid, position, layer_id)
  SELECT i.uuid, j.key, j.value FROM images i, json_each(i.layers) j;
ALTER TABLE images DROP COLUMN layers;

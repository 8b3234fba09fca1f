package dev.contree.store.sqlite;

import dev.contree.store.jdbc.Schema;

/** SQLite's versioned schema: the scripts under {@code /db/}, in order; append only. */
final class Migrations {
    static final Schema SCHEMA = new Schema("/db/", "V1__init.sql", "V2__layers.sql", "V3__digest_proofs.sql", "V4__image_layers.sql", "V5__layer_objects.sql",
            "V6__object_marks.sql");

    private Migrations() {}
}

package dev.contree.operations;

/** What an operation does, lowercase on the wire. */
public enum OperationKind {
    INSTANCE("instance"), IMAGE_IMPORT("image_import");

    public final String wire;

    OperationKind(String wire) {
        this.wire = wire;
    }

    public static OperationKind parse(String s) {
        for (OperationKind k : values()) if (k.wire.equals(s)) return k;
        return null;
    }
}

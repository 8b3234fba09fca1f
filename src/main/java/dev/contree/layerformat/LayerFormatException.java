package dev.contree.layerformat;

import java.io.IOException;

/** An archive that cannot become a layer safely or faithfully (path escape, dangling hard link, ...). */
public final class LayerFormatException extends IOException {
    public LayerFormatException(String message) {
        super(message);
    }
}

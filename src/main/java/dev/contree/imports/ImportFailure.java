package dev.contree.imports;

import java.io.IOException;

/** An import failure whose message is shown to the user as the operation error (never contains a password). */
final class ImportFailure extends IOException {
    ImportFailure(String message) {
        super(message);
    }

    ImportFailure(String message, Throwable cause) {
        super(message, cause);
    }
}

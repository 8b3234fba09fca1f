package dev.contree.store;

/** An unexpected failure of the metadata store (a server fault, never a client mistake). */
public class StoreException extends RuntimeException {
    public StoreException(String message) { super(message); }
    public StoreException(String message, Throwable cause) { super(message, cause); }
}

package dev.contree.store;

/** A window of a newest-first listing. */
public record Page(int limit, int offset) {
    public static final int MAX_LIMIT = 1000;
    public static final Page ALL = new Page(Integer.MAX_VALUE, 0);
}

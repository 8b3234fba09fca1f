package dev.contree.registry;

/** Polled between registry requests; return true to abort with {@link RegistryException.Kind#CANCELLED}. */
@FunctionalInterface
public interface CancelCheck {
    CancelCheck NEVER = () -> false;

    boolean isCancelled();
}

package dev.contree.registry;

/** Registry credentials; an empty (or null) username means anonymous. {@link #toString()} never shows the password. */
public record Credentials(String username, String password) {
    public static final Credentials ANONYMOUS = new Credentials("", "");

    public Credentials {
        username = username == null ? "" : username;
        password = password == null ? "" : password;
    }

    public boolean anonymous() {
        return username.isEmpty();
    }

    @Override
    public String toString() {
        return anonymous() ? "Credentials[anonymous]" : "Credentials[username=" + username + ", password=***]";
    }
}

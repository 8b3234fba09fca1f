package dev.contree.registry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** One parsed {@code WWW-Authenticate} challenge ({@code Bearer realm="...",service="...",scope="..."} or {@code Basic ...}). */
record AuthChallenge(String scheme, Map<String, String> params) {
    String realm() {
        return params.get("realm");
    }

    String service() {
        return params.get("service");
    }

    String scope() {
        return params.get("scope");
    }

    boolean isBearer() {
        return scheme.equals("bearer");
    }

    boolean isBasic() {
        return scheme.equals("basic");
    }

    /** Parses all challenges in the given header values (RFC 7235: comma-separated, quoted strings with escapes). */
    static List<AuthChallenge> parse(List<String> headerValues) {
        List<AuthChallenge> out = new ArrayList<>();
        for (String v : headerValues) parseOne(v, out);
        return out;
    }

    /** The challenge to answer: Bearer preferred over Basic; null if none usable. */
    static AuthChallenge pick(List<String> headerValues) {
        AuthChallenge basic = null;
        for (AuthChallenge c : parse(headerValues)) {
            if (c.isBearer() && c.realm() != null) return c;
            if (c.isBasic() && basic == null) basic = c;
        }
        return basic;
    }

    private static void parseOne(String s, List<AuthChallenge> out) {
        int i = 0, n = s.length();
        String scheme = null;
        Map<String, String> params = null;
        while (i < n) {
            while (i < n && (s.charAt(i) == ' ' || s.charAt(i) == ',' || s.charAt(i) == '\t')) i++;
            if (i >= n) break;
            int start = i;
            while (i < n && isTokenChar(s.charAt(i))) i++;
            if (i == start) { i++; continue; } // junk char
            String tok = s.substring(start, i);
            int j = i;
            while (j < n && s.charAt(j) == ' ') j++;
            if (j < n && s.charAt(j) == '=' && scheme != null) {
                // auth-param
                i = j + 1;
                while (i < n && s.charAt(i) == ' ') i++;
                StringBuilder val = new StringBuilder();
                if (i < n && s.charAt(i) == '"') {
                    i++;
                    while (i < n && s.charAt(i) != '"') {
                        char c = s.charAt(i++);
                        if (c == '\\' && i < n) c = s.charAt(i++);
                        val.append(c);
                    }
                    i++; // closing quote
                } else {
                    while (i < n && s.charAt(i) != ',' && s.charAt(i) != ' ') val.append(s.charAt(i++));
                }
                params.put(tok.toLowerCase(Locale.ROOT), val.toString());
            } else {
                // new challenge scheme (possibly followed by token68, which we ignore)
                if (scheme != null) out.add(new AuthChallenge(scheme, params));
                scheme = tok.toLowerCase(Locale.ROOT);
                params = new LinkedHashMap<>();
            }
        }
        if (scheme != null) out.add(new AuthChallenge(scheme, params));
    }

    private static boolean isTokenChar(char c) {
        return c > ' ' && c < 0x7f && "()<>@,;:\\\"/[]?={} \t".indexOf(c) < 0 || c == '/';
    }
}

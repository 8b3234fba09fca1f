package dev.contree.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.instances.InstanceSpec;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/** Parses and validates {@code POST /v1/instances} bodies (every client's dialect). */
final class InstanceRequests {
    private static final Pattern HOSTNAME = Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*");
    private static final Pattern ENV_NAME = Pattern.compile("[^=\\x00]+");
    /** Linux limits, in bytes: a path component (NAME_MAX), a path (PATH_MAX). */
    static final int NAME_MAX = 255, PATH_MAX = 4096;
    /**
     * execve(2) refuses one string over MAX_ARG_STRLEN (128 KiB) and all of argv + env over a quarter of the
     * stack limit (2 MiB by default): past these the command could never start, so the request is a 400.
     */
    static final int MAX_ARG_BYTES = 128 * 1024 - 1, MAX_EXEC_BYTES = 1536 * 1024;

    private InstanceRequests() {}

    static InstanceSpec parse(ObjectNode body, int maxTimeout) {
        String command = Fields.requiredString(body, "command");
        if (command.indexOf('\0') >= 0) throw ApiException.badRequest("'command' must not contain NUL bytes");
        String image = Fields.requiredString(body, "image");
        boolean shell = Fields.bool(body, "shell", false);
        List<String> args = stringList(body, "args");
        Map<String, String> env = env(body);
        String cwd = Fields.string(body, "cwd", "");
        if (!cwd.isEmpty() && (!cwd.startsWith("/") || cwd.indexOf('\0') >= 0 || !fitsPathLimits(cwd))) {
            throw ApiException.badRequest("'cwd' must be an absolute path of at most " + PATH_MAX + " bytes, "
                    + NAME_MAX + " per component");
        }
        String hostname = Fields.string(body, "hostname", InstanceSpec.DEFAULT_HOSTNAME);
        if (hostname.isEmpty()) hostname = InstanceSpec.DEFAULT_HOSTNAME;
        if (hostname.length() > 64 || !HOSTNAME.matcher(hostname).matches()) {
            throw ApiException.badRequest("'hostname' must be a valid host name of at most 64 characters");
        }
        int timeout = (int) Fields.integer(body, "timeout", Math.min(InstanceSpec.DEFAULT_TIMEOUT, maxTimeout), 1, maxTimeout);
        long truncate = Fields.integer(body, "truncate_output_at", InstanceSpec.DEFAULT_TRUNCATE, 0, InstanceSpec.MAX_TRUNCATE);
        int uid = (int) Fields.integer(body, "uid", 0, 0, 65534);
        int gid = (int) Fields.integer(body, "gid", 0, 0, 65534);
        checkExecSize(command, shell, args, env);
        ObjectNode limits = Fields.object(body, "resources_limits");
        long maxLayer = limits == null ? InstanceSpec.DEFAULT_MAX_LAYER_BYTES
                : Fields.integer(limits, "max_layer_bytes", InstanceSpec.DEFAULT_MAX_LAYER_BYTES, 1, InstanceSpec.MAX_LAYER_BYTES);
        ObjectNode networking = Fields.object(body, "networking");
        boolean network = networking != null && Fields.bool(networking, "enabled", false);
        return new InstanceSpec(command, image, shell, args, env, Fields.bool(body, "preserve_env", false), cwd, hostname,
                Fields.bool(body, "disposable", false), stdin(body), timeout, truncate, files(body), uid, gid, maxLayer, network,
                present(body, "uid") || present(body, "gid"), !closesStdin(body));
    }

    private static int utf8(String s) { return s.getBytes(StandardCharsets.UTF_8).length; }

    static boolean fitsPathLimits(String path) {
        if (utf8(path) > PATH_MAX - 1) return false;
        for (String p : path.split("/")) if (utf8(p) > NAME_MAX) return false;
        return true;
    }

    /** What execve would refuse with E2BIG is a 400 now, not a failed run later. */
    static void checkExecSize(String command, boolean shell, List<String> args, Map<String, String> env) {
        long total = utf8(command) + 1 + (shell ? 16 : 0);
        if (utf8(command) > MAX_ARG_BYTES) throw ApiException.badRequest("'command' exceeds " + MAX_ARG_BYTES + " bytes");
        for (String a : args) {
            int n = utf8(a);
            if (n > MAX_ARG_BYTES) throw ApiException.badRequest("an 'args' item exceeds " + MAX_ARG_BYTES + " bytes");
            total += n + 1;
        }
        for (var e : env.entrySet()) {
            int n = utf8(e.getKey()) + 1 + (e.getValue() == null ? 0 : utf8(e.getValue()));
            if (n > MAX_ARG_BYTES) throw ApiException.badRequest("env '" + e.getKey() + "' exceeds " + MAX_ARG_BYTES + " bytes");
            total += n + 1;
        }
        if (total > MAX_EXEC_BYTES)
            throw ApiException.badRequest("command, args and env together exceed " + MAX_EXEC_BYTES + " bytes");
    }

    private static boolean present(ObjectNode body, String name) {
        return body.hasNonNull(name);
    }

    static List<String> stringList(ObjectNode body, String name) {
        JsonNode v = body.get(name);
        List<String> out = new ArrayList<>();
        if (v == null || v.isNull()) return out;
        if (!v.isArray()) throw ApiException.badRequest("'" + name + "' must be an array of strings");
        for (JsonNode item : v) {
            if (!item.isTextual()) throw ApiException.badRequest("'" + name + "' must be an array of strings");
            if (item.textValue().indexOf('\0') >= 0) throw ApiException.badRequest("'" + name + "' must not contain NUL bytes");
            out.add(item.textValue());
        }
        return out;
    }

    static Map<String, String> env(ObjectNode body) {
        ObjectNode env = Fields.object(body, "env");
        Map<String, String> out = new LinkedHashMap<>();
        if (env == null) return out;
        for (Iterator<Map.Entry<String, JsonNode>> it = env.fields(); it.hasNext(); ) {
            var e = it.next();
            if (!ENV_NAME.matcher(e.getKey()).matches()) throw ApiException.badRequest("invalid env name '" + e.getKey() + "'");
            JsonNode v = e.getValue();
            if (v.isNull()) out.put(e.getKey(), null);
            else if (v.isTextual() && v.textValue().indexOf('\0') >= 0)
                throw ApiException.badRequest("env value of '" + e.getKey() + "' must not contain a NUL character");
            else if (v.isTextual()) out.put(e.getKey(), v.textValue());
            else if (v.isNumber() || v.isBoolean()) out.put(e.getKey(), v.asText());
            else throw ApiException.badRequest("env value of '" + e.getKey() + "' must be a string or null");
        }
        return out;
    }

    /** A {@code ClosableStreamRepr}'s {@code close}: true unless the stream says {@code "close": false}. */
    static boolean closesStdin(ObjectNode body) {
        JsonNode v = body.get("stdin");
        return v == null || !v.isObject() || Fields.bool((ObjectNode) v, "close", true);
    }

    static byte[] stdin(ObjectNode body) {
        JsonNode v = body.get("stdin");
        if (v == null || v.isNull()) return new byte[0];
        if (v.isTextual()) return v.textValue().getBytes(StandardCharsets.UTF_8);
        if (!v.isObject()) throw ApiException.badRequest("'stdin' must be an object {value, encoding}");
        String value = Fields.string((ObjectNode) v, "value", "");
        String encoding = Fields.string((ObjectNode) v, "encoding", "ascii");
        return switch (encoding) {
            case "ascii", "utf-8", "utf8", "text" -> value.getBytes(StandardCharsets.UTF_8);
            case "base64" -> {
                try {
                    yield Base64.getDecoder().decode(value.replaceAll("[\\s]", ""));
                } catch (IllegalArgumentException e) {
                    throw ApiException.badRequest("'stdin.value' is not valid base64");
                }
            }
            default -> throw ApiException.badRequest("'stdin.encoding' must be ascii or base64");
        };
    }

    private static Map<String, InstanceSpec.FileSpec> files(ObjectNode body) {
        ObjectNode files = Fields.object(body, "files");
        Map<String, InstanceSpec.FileSpec> out = new LinkedHashMap<>();
        if (files == null) return out;
        for (Iterator<Map.Entry<String, JsonNode>> it = files.fields(); it.hasNext(); ) {
            var e = it.next();
            String path = normalisePath(e.getKey());
            if (out.containsKey(path)) throw ApiException.badRequest("files['" + e.getKey() + "'] names the same target as another entry");
            if (!e.getValue().isObject()) throw ApiException.badRequest("files['" + e.getKey() + "'] must be an object with 'uuid'");
            ObjectNode spec = (ObjectNode) e.getValue();
            String uuid = Params.uuid(Fields.requiredString(spec, "uuid"), "file");
            int mode = mode(spec.get("mode"), e.getKey());
            int uid = (int) Fields.integer(spec, "uid", 0, 0, 65534);
            int gid = (int) Fields.integer(spec, "gid", 0, 0, 65534);
            out.put(path, new InstanceSpec.FileSpec(uuid, mode, uid, gid));
        }
        // A target inside another target would need that file to be a directory. Each target's parents are looked
        // up (paths are normalised), not every pair compared: a body may name tens of thousands of files.
        for (String b : out.keySet())
            for (int i = b.lastIndexOf('/'); i > 0; i = b.lastIndexOf('/', i - 1))
                if (out.containsKey(b.substring(0, i)))
                    throw ApiException.badRequest("files: '" + b + "' lies under the file '" + b.substring(0, i) + "'");
        return out;
    }

    /** An absolute, normalised destination path with no {@code ..}; 400 otherwise. */
    static String normalisePath(String raw) {
        if (raw.isEmpty() || utf8(raw) > PATH_MAX - 1 || raw.indexOf('\0') >= 0 || !raw.startsWith("/")) {
            throw ApiException.badRequest("file path '" + raw + "' must be an absolute path");
        }
        List<String> parts = new ArrayList<>();
        for (String p : raw.split("/")) {
            if (p.isEmpty() || p.equals(".")) continue;
            if (p.equals("..")) throw ApiException.badRequest("file path '" + raw + "' must not contain '..'");
            if (utf8(p) > NAME_MAX) throw ApiException.badRequest("file path '" + raw + "' has a component longer than 255 bytes");
            parts.add(p);
        }
        if (parts.isEmpty()) throw ApiException.badRequest("file path '" + raw + "' must name a file, not /");
        return "/" + String.join("/", parts);
    }

    /** {@code "0644"}, {@code "0o644"}, {@code "0o100644"}, {@code "644"} or a JSON integer st_mode → permission bits. */
    static int mode(JsonNode v, String path) {
        if (v == null || v.isNull()) return 0644;
        if (v.isIntegralNumber()) {
            if (!v.canConvertToLong()) throw ApiException.badRequest("mode of '" + path + "' is out of range");
            return checkedMode(v.asLong(), path);
        }
        if (!v.isTextual()) throw ApiException.badRequest("mode of '" + path + "' must be an octal string like \"0644\"");
        String s = v.textValue().trim();
        if (s.startsWith("0o") || s.startsWith("0O")) s = s.substring(2);
        try {
            if (s.isEmpty() || s.length() > 8) throw new NumberFormatException();
            return checkedMode(Long.parseLong(s, 8), path);
        } catch (NumberFormatException e) {
            throw ApiException.badRequest("mode of '" + path + "' must be an octal string like \"0644\", got '" + v.textValue() + "'");
        }
    }

    /** Permission bits 0..07777, optionally with the regular-file type (a st_mode); anything else is a 400. */
    private static int checkedMode(long m, String path) {
        if (m < 0 || m > 0177777 || ((m & 0170000) != 0 && (m & 0170000) != 0100000)) {
            throw ApiException.badRequest("mode of '" + path + "' must be permission bits 0..07777 (optionally a regular file's st_mode)");
        }
        return (int) (m & 07777);
    }
}

package dev.contree.api;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.contree.instances.ExecutionResult;
import dev.contree.instances.InstanceService;
import dev.contree.instances.InstanceSpec;
import dev.contree.instances.SubprocessRequest;
import dev.contree.operations.RequestRejected;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code /v1/operations/{uuid}/subprocesses}: more processes in a running instance (spid ≥ 2; spid 1 is the main
 * process), their stdin, signals and folded records. See API.md §3.7.
 */
final class SubprocessRoutes {
    /** The signals a client may send, by name (x86_64 numbers). */
    static final Map<String, Integer> SIGNALS = Map.of("HUP", 1, "INT", 2, "QUIT", 3, "KILL", 9, "USR1", 10, "USR2", 12,
            "TERM", 15);

    private final InstanceService instances;
    private final long maxJsonBytes;
    private final int maxTimeout;

    SubprocessRoutes(InstanceService instances, long maxJsonBytes, int maxTimeout) {
        this.instances = instances;
        this.maxJsonBytes = maxJsonBytes;
        this.maxTimeout = maxTimeout;
    }

    void register(RoutesConfig r) {
        r.post("/v1/operations/{uuid}/subprocesses", this::create);
        r.get("/v1/operations/{uuid}/subprocesses/{spid}", this::get);
        r.delete("/v1/operations/{uuid}/subprocesses/{spid}", this::kill);
        r.post("/v1/operations/{uuid}/subprocesses/{spid}/stdin", this::stdin);
    }

    private void create(Context ctx) {
        ObjectNode raw = Json.readObject(ctx, maxJsonBytes);
        SubprocessRequest request = parse(raw, maxTimeout);
        if (routed(ctx, raw)) return;
        int spid = call(ctx, () -> instances.startSubprocess(Auth.account(ctx), operation(ctx), request));
        ObjectNode body = Json.object();
        body.put("spid", spid);
        Json.send(ctx, 200, body);
    }

    private void get(Context ctx) {
        ExecutionResult result = call(ctx, () -> instances.subprocess(Auth.account(ctx), operation(ctx), spid(ctx)));
        Json.send(ctx, 200, OperationMetadata.instanceResult(result));
    }

    private void kill(Context ctx) {
        int signo = signal(ctx.queryParam("signal"));
        spid(ctx);
        if (routed(ctx, null)) return;
        call(ctx, () -> { instances.signal(Auth.account(ctx), operation(ctx), spid(ctx), signo); return null; });
        ctx.status(204);
    }

    private void stdin(Context ctx) {
        ObjectNode body = Json.readObject(ctx, maxJsonBytes);
        ObjectNode wrapped = Json.object();
        wrapped.set("stdin", body);
        byte[] data = InstanceRequests.stdin(wrapped);
        boolean close = InstanceRequests.closesStdin(wrapped) && body.has("close"); // a bare write leaves it open
        spid(ctx);
        if (routed(ctx, body)) return;
        call(ctx, () -> { instances.writeStdin(Auth.account(ctx), operation(ctx), spid(ctx), data, close); return null; });
        ctx.status(204);
    }

    /** On a call one node routed to another: the receiving node answers it itself, it never routes it on. */
    static final String ROUTED = "X-Contree-Routed";
    private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newBuilder()
            .version(java.net.http.HttpClient.Version.HTTP_1_1).connectTimeout(java.time.Duration.ofSeconds(5))
            .followRedirects(java.net.http.HttpClient.Redirect.NEVER).build();

    /**
     * In a cluster, sends the call (validated here) to the node that runs the instance, with the caller's token, and
     * answers what it answered; false when the instance runs here (or nowhere), so the call is answered here.
     */
    private boolean routed(Context ctx, ObjectNode body) {
        if (ctx.header(ROUTED) != null) return false;
        var to = instances.routeFor(Auth.account(ctx), operation(ctx));
        if (to.isEmpty()) return false;
        String query = ctx.queryString();
        var b = java.net.http.HttpRequest.newBuilder(java.net.URI.create(to.get() + ctx.path() + (query == null ? "" : "?" + query)))
                .timeout(java.time.Duration.ofSeconds(30)).header(ROUTED, "1");
        String auth = ctx.header("Authorization");
        if (auth != null) b.header("Authorization", auth);
        try {
            if (body == null) {
                b.method(ctx.method().name(), java.net.http.HttpRequest.BodyPublishers.noBody());
            } else {
                b.method(ctx.method().name(), java.net.http.HttpRequest.BodyPublishers.ofByteArray(Json.MAPPER.writeValueAsBytes(body)))
                        .header("Content-Type", "application/json");
            }
            var r = HTTP.send(b.build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray());
            ctx.status(r.statusCode());
            r.headers().firstValue("Content-Type").ifPresent(ctx::contentType);
            r.headers().firstValue("Retry-After").ifPresent(v -> ctx.header("Retry-After", v));
            ctx.result(r.body());
            return true;
        } catch (java.io.IOException e) {
            throw ApiException.rejected(ctx, new RequestRejected(RequestRejected.Reason.UNAVAILABLE,
                    "the cluster node running this instance did not answer (" + e.getClass().getSimpleName() + "); retry"));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw ApiException.rejected(ctx, new RequestRejected(RequestRejected.Reason.UNAVAILABLE, "interrupted"));
        }
    }

    private static String operation(Context ctx) {
        return Params.uuid(ctx.pathParam("uuid"), "operation");
    }

    private static int spid(Context ctx) {
        String v = ctx.pathParam("spid");
        try {
            int spid = Integer.parseInt(v);
            if (spid >= 1) return spid;
        } catch (NumberFormatException ignored) {
            // below
        }
        throw ApiException.badRequest("spid must be a process number ≥ 1 (1 = the main process), got '" + v + "'");
    }

    /** A signal by name ({@code TERM}, {@code SIGTERM}, {@code term}) or number; TERM when none is given. */
    static int signal(String v) {
        if (v == null || v.isBlank()) return SIGNALS.get("TERM");
        String name = v.trim().toUpperCase(Locale.ROOT);
        if (name.startsWith("SIG")) name = name.substring(3);
        Integer n = SIGNALS.get(name);
        if (n == null) n = SIGNALS.values().stream().filter(x -> x.toString().equals(v.trim())).findFirst().orElse(null);
        if (n == null) throw ApiException.badRequest("unknown signal '" + v + "': one of " + String.join(", ",
                SIGNALS.keySet().stream().sorted().toList()));
        return n;
    }

    /** Validates an {@code ExecSpec} body. */
    static SubprocessRequest parse(ObjectNode body, int maxTimeout) {
        String command = Fields.requiredString(body, "command");
        if (command.indexOf('\0') >= 0) throw ApiException.badRequest("'command' must not contain NUL bytes");
        boolean shell = Fields.bool(body, "shell", false);
        List<String> args = InstanceRequests.stringList(body, "args");
        Map<String, String> env = InstanceRequests.env(body);
        String cwd = Fields.string(body, "cwd", "");
        if (!cwd.isEmpty() && (!cwd.startsWith("/") || cwd.indexOf('\0') >= 0 || !InstanceRequests.fitsPathLimits(cwd))) {
            throw ApiException.badRequest("'cwd' must be an absolute path of at most " + InstanceRequests.PATH_MAX
                    + " bytes, " + InstanceRequests.NAME_MAX + " per component");
        }
        int uid = (int) Fields.integer(body, "uid", 0, 0, 65534);
        int gid = (int) Fields.integer(body, "gid", 0, 0, 65534);
        boolean userGiven = body.hasNonNull("uid") || body.hasNonNull("gid");
        int timeout = (int) Fields.integer(body, "timeout", 0, 0, maxTimeout);
        long truncate = Fields.integer(body, "truncate_output_at", InstanceSpec.DEFAULT_TRUNCATE, 0, InstanceSpec.MAX_TRUNCATE);
        InstanceRequests.checkExecSize(command, shell, args, env);
        return new SubprocessRequest(command, shell, args, env, cwd, uid, gid, userGiven, InstanceRequests.stdin(body),
                InstanceRequests.closesStdin(body), timeout, truncate);
    }

    private interface Call<T> {
        T run() throws RequestRejected;
    }

    private static <T> T call(Context ctx, Call<T> call) {
        try {
            return call.run();
        } catch (RequestRejected e) {
            throw ApiException.rejected(ctx, e);
        }
    }
}

package dev.contree.registry;

import dev.contree.cancel.CancelToken;
import dev.contree.registry.RegistryException.Kind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.net.ssl.SSLException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Docker Registry v2 / OCI distribution client: resolves a reference to a linux/amd64 manifest and config, and opens
 * verified layer blob streams. Thread-safe; keep one instance (it caches auth challenges, schemes and tokens).
 *
 * <p>Transport rules: HTTPS only, except loopback registries (plain HTTP preferred, HTTPS tried next) and
 * {@link RegistryConfig#insecureHosts()} (HTTPS first, then plain HTTP). A plain-HTTP URL to any other host — e.g. a
 * redirect or token realm — is refused with {@link Kind#INSECURE} before anything is sent.
 */
public final class RegistryClient implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RegistryClient.class);

    public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    public static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    public static final String DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
    public static final String DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    public static final String DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

    static final String MANIFEST_ACCEPT = String.join(", ", OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST,
        DOCKER_SCHEMA1_SIGNED + ";q=0.1", DOCKER_SCHEMA1 + ";q=0.1");
    static final int MAX_MANIFEST_BYTES = 4 << 20;
    static final int MAX_CONFIG_BYTES = 16 << 20;
    private static final int MAX_REDIRECTS = 10;
    private static final Pattern SHA256 = Pattern.compile("sha256:[0-9a-f]{64}");

    private final RegistryConfig cfg;
    private final HttpClient http;
    /** apiHost → "https" / "http", learned by the first successful ping. */
    private final Map<String, String> schemes = new ConcurrentHashMap<>();
    /** apiHost → last challenge seen (Bearer or Basic); absent = no auth needed so far. */
    private final Map<String, AuthChallenge> challenges = new ConcurrentHashMap<>();
    /** apiHost|realm|service|scope|user|sha256(password) → bearer token. */
    private final Map<String, CachedToken> tokens = new ConcurrentHashMap<>();

    private record CachedToken(String token, Instant expires) {}

    /** Per-call context. */
    private record Ctx(ImageReference ref, Credentials creds, CancelToken cancel) {
        String scope() {
            return "repository:" + ref.repository() + ":pull";
        }

        String host() {
            return ref.apiHost();
        }
    }

    public RegistryClient(RegistryConfig cfg) {
        this.cfg = Objects.requireNonNull(cfg);
        this.http = HttpClient.newBuilder()
            .connectTimeout(cfg.connectTimeout())
            .followRedirects(HttpClient.Redirect.NEVER)
            .build();
    }

    public RegistryConfig config() {
        return cfg;
    }

    // ------------------------------------------------------------------------------------------------ public API

    /**
     * Fetches the manifest (following an index / manifest list to the configured platform, linux/amd64 by default)
     * and the config. Manifest digests are verified when pulling by digest and for every index entry; the config
     * blob is verified against its descriptor.
     */
    public PulledImage resolve(ImageReference ref, Credentials creds, CancelToken cancel) throws RegistryException {
        Ctx ctx = new Ctx(ref, creds == null ? Credentials.ANONYMOUS : creds, cancel == null ? CancelToken.none() : cancel);
        Fetched m = fetchManifest(ctx, ref.reference(), null);
        String indexDigest = null;
        for (int depth = 0; m.isIndex(); depth++) {
            if (depth >= 2) throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + ": nested image indexes are not supported");
            if (indexDigest == null) indexDigest = m.digest;
            Descriptor pick = pickPlatform(ctx, m);
            m = fetchManifest(ctx, pick.digest(), pick);
        }
        OciJson.Manifest body = m.body;
        Descriptor configDesc = descriptor(ctx, body.config(), "config");
        String cmt = configDesc.mediaType();
        if (cmt != null && !cmt.isEmpty() && !cmt.equals(OCI_CONFIG) && !cmt.equals(DOCKER_CONFIG)) {
            throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + " is not a container image (config media type " + cmt + ")");
        }
        List<Descriptor> layers = new ArrayList<>();
        if (body.layers() == null) throw new RegistryException(Kind.PROTOCOL, "manifest of " + ref + " has no layers list");
        for (OciJson.ContentDescriptor l : body.layers()) {
            Descriptor d = descriptor(ctx, l, "layer");
            if (!d.isLayer()) {
                throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + " has a layer of unsupported media type '" + d.mediaType() + "'");
            }
            layers.add(d);
        }
        if (configDesc.size() > MAX_CONFIG_BYTES) {
            throw new RegistryException(Kind.PROTOCOL, "config of " + ref + " is too large (" + configDesc.size() + " bytes)");
        }
        byte[] configBytes;
        try (BlobStream in = openBlob(ctx, configDesc, "config " + configDesc.digest() + " of " + ref)) {
            configBytes = in.readAllBytes();
        } catch (IOException e) {
            throw RegistryException.from(e);
        }
        ImageConfig config = parseConfig(ref, configBytes);
        if (!config.os().isEmpty() && !config.os().equals(cfg.os())
            || !config.architecture().isEmpty() && !config.architecture().equals(cfg.architecture())) {
            throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + " is for " + config.os() + "/" + config.architecture()
                + "; only " + cfg.os() + "/" + cfg.architecture() + " is supported");
        }
        return new PulledImage(ref, m.digest, layers, config, configDesc.digest(), m.mediaType, indexDigest);
    }

    /**
     * Opens a layer (or any) blob of {@code ref}'s repository. The returned stream verifies size and sha256: the
     * read that hits the end throws (a {@link BlobStream.BlobIOException}, unwrap with
     * {@link RegistryException#from(IOException)}) on mismatch. Call {@link BlobStream#verifyFully()} before
     * committing data that was consumed by a reader that may stop early.
     */
    public BlobStream openBlob(ImageReference ref, Descriptor layer, Credentials creds) throws RegistryException {
        return openBlob(ref, layer, creds, CancelToken.none());
    }

    public BlobStream openBlob(ImageReference ref, Descriptor layer, Credentials creds, CancelToken cancel) throws RegistryException {
        Ctx ctx = new Ctx(ref, creds == null ? Credentials.ANONYMOUS : creds, cancel == null ? CancelToken.none() : cancel);
        return openBlob(ctx, layer, "layer " + layer.digest() + " of " + ref);
    }

    @Override
    public void close() {
        http.close();
    }

    // ------------------------------------------------------------------------------------------------ manifests

    /** A manifest or index as fetched: its media type (declared or sniffed), the digest of its bytes, and its body. */
    private record Fetched(String mediaType, String digest, OciJson.Manifest body) {
        boolean isIndex() {
            return mediaType.equals(OCI_INDEX) || mediaType.equals(DOCKER_LIST);
        }
    }

    private Fetched fetchManifest(Ctx ctx, String reference, Descriptor expected) throws RegistryException {
        ImageReference ref = ctx.ref;
        HttpResponse<InputStream> resp = send(ctx, "/v2/" + ref.repository() + "/manifests/" + reference, MANIFEST_ACCEPT);
        byte[] bytes;
        try (InputStream in = resp.body()) {
            if (resp.statusCode() != 200) throw statusError(ctx, resp, "manifest " + reference);
            bytes = readCapped(in, MAX_MANIFEST_BYTES, "manifest of " + ref);
        } catch (IOException e) {
            throw new RegistryException(Kind.NETWORK, "network error while fetching manifest of " + ref + ": " + e.getMessage(), e);
        }
        String digest = sha256(bytes);
        if (reference.startsWith("sha256:") && !digest.equals(reference)) {
            throw new RegistryException(Kind.DIGEST_MISMATCH, "manifest of " + ref + " does not match its digest: expected "
                + reference + ", got " + digest);
        }
        if (expected != null && expected.size() != bytes.length) {
            throw new RegistryException(Kind.DIGEST_MISMATCH, "manifest " + reference + " of " + ref + " size mismatch: expected "
                + expected.size() + " bytes, got " + bytes.length);
        }
        String header = resp.headers().firstValue("Docker-Content-Digest").orElse(null);
        OciJson.Manifest node;
        try {
            node = OciJson.manifest(bytes).orElse(null);
        } catch (OciJson.InvalidJson e) {
            if (e.isSyntaxError()) {
                throw new RegistryException(Kind.PROTOCOL, "registry " + ref.registry() + " returned an invalid manifest for " + ref + " (not JSON)");
            }
            node = null; // JSON, but a field of the wrong type
        }
        if (node == null) throw new RegistryException(Kind.PROTOCOL, "registry returned an invalid manifest for " + ref);
        String ct = resp.headers().firstValue("Content-Type").map(v -> v.split(";")[0].strip().toLowerCase(Locale.ROOT)).orElse("");
        String mt = Objects.requireNonNullElse(node.mediaType(), "");
        if (mt.isEmpty()) mt = ct;
        if (Objects.equals(node.schemaVersion(), 1) || mt.equals(DOCKER_SCHEMA1) || mt.equals(DOCKER_SCHEMA1_SIGNED)) {
            throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + " uses a Docker schema 1 manifest, which is not supported"
                + " (re-push it with a current Docker or skopeo)");
        }
        if (!mt.equals(OCI_INDEX) && !mt.equals(DOCKER_LIST) && !mt.equals(OCI_MANIFEST) && !mt.equals(DOCKER_MANIFEST)) {
            if (node.manifests() != null) mt = OCI_INDEX;
            else if (node.layers() != null && node.config() != null) mt = OCI_MANIFEST;
            else throw new RegistryException(Kind.UNSUPPORTED, "image " + ref + ": unsupported manifest media type '" + mt + "'");
        }
        if (header != null && header.startsWith("sha256:") && !header.equals(digest)) {
            throw new RegistryException(Kind.DIGEST_MISMATCH, "manifest of " + ref + " does not match the Docker-Content-Digest"
                + " header: header " + header + ", content " + digest);
        }
        log.debug("manifest {} of {}: {} {}", reference, ref, mt, digest);
        return new Fetched(mt, digest, node);
    }

    private Descriptor pickPlatform(Ctx ctx, Fetched index) throws RegistryException {
        List<OciJson.ContentDescriptor> ms = Objects.requireNonNullElse(index.body.manifests(), List.of());
        Descriptor best = null;
        boolean bestHasVariant = true;
        List<String> available = new ArrayList<>();
        for (OciJson.ContentDescriptor e : ms) {
            if (e == null) continue; // a null entry has no platform: skipped like an attestation
            OciJson.Platform p = e.platform() != null ? e.platform() : new OciJson.Platform(null, null, null);
            String os = Objects.requireNonNullElse(p.os(), ""), arch = Objects.requireNonNullElse(p.architecture(), "");
            String variant = Objects.requireNonNullElse(p.variant(), "");
            String mt = Objects.requireNonNullElse(e.mediaType(), OCI_MANIFEST);
            if (!(mt.equals(OCI_MANIFEST) || mt.equals(DOCKER_MANIFEST) || mt.equals(OCI_INDEX) || mt.equals(DOCKER_LIST))) continue;
            if (os.isEmpty() || os.equals("unknown")) continue; // attestation manifests
            available.add(os + "/" + arch + (variant.isEmpty() ? "" : "/" + variant));
            if (os.equals(cfg.os()) && arch.equals(cfg.architecture())) {
                boolean hasVariant = !variant.isEmpty() && !variant.equals("v1");
                if (best == null || bestHasVariant && !hasVariant) {
                    best = descriptor(ctx, e, "manifest");
                    bestHasVariant = hasVariant;
                }
            }
        }
        if (best == null) {
            throw new RegistryException(Kind.UNSUPPORTED, "image " + ctx.ref + " has no " + cfg.os() + "/" + cfg.architecture()
                + " variant (available: " + (available.isEmpty() ? "none" : String.join(", ", available)) + ")");
        }
        return best;
    }

    private Descriptor descriptor(Ctx ctx, OciJson.ContentDescriptor n, String what) throws RegistryException {
        if (n == null) n = OciJson.ContentDescriptor.ABSENT;
        String digest = Objects.requireNonNullElse(n.digest(), "");
        long size = n.size() == null ? -1 : n.size();
        if (!SHA256.matcher(digest).matches()) {
            throw new RegistryException(digest.contains(":") && !digest.startsWith("sha256:") ? Kind.UNSUPPORTED : Kind.PROTOCOL,
                "image " + ctx.ref + ": " + what + " has an unsupported or invalid digest '" + digest + "' (only sha256 is supported)");
        }
        if (size < 0) throw new RegistryException(Kind.PROTOCOL, "image " + ctx.ref + ": " + what + " " + digest + " has no valid size");
        return new Descriptor(Objects.requireNonNullElse(n.mediaType(), ""), digest, size);
    }

    private ImageConfig parseConfig(ImageReference ref, byte[] bytes) throws RegistryException {
        OciJson.Configuration root;
        try {
            root = OciJson.configuration(bytes).orElse(null);
        } catch (OciJson.InvalidJson e) {
            if (e.isSyntaxError()) throw new RegistryException(Kind.PROTOCOL, "config of " + ref + " is not valid JSON");
            throw new RegistryException(Kind.PROTOCOL, "config of " + ref + " is not a valid image config: " + e.getMessage());
        }
        if (root == null) throw new RegistryException(Kind.PROTOCOL, "config of " + ref + " is not a JSON object");
        return root.toImageConfig();
    }

    // ------------------------------------------------------------------------------------------------ blobs

    private BlobStream openBlob(Ctx ctx, Descriptor d, String what) throws RegistryException {
        if (d.digest() == null || !SHA256.matcher(d.digest()).matches()) {
            throw new RegistryException(Kind.UNSUPPORTED, what + ": only sha256 digests are supported");
        }
        if (d.size() < 0) throw new RegistryException(Kind.PROTOCOL, what + ": negative size");
        HttpResponse<InputStream> resp = send(ctx, "/v2/" + ctx.ref.repository() + "/blobs/" + d.digest(), "*/*");
        if (resp.statusCode() != 200) {
            try (InputStream ignored = resp.body()) {
                throw statusError(ctx, resp, "blob " + d.digest());
            } catch (IOException e) {
                throw new RegistryException(Kind.NETWORK, "network error while fetching " + what, e);
            }
        }
        long len = resp.headers().firstValueAsLong("Content-Length").orElse(-1);
        if (len >= 0 && len != d.size()) {
            closeQuietly(resp.body());
            throw new RegistryException(Kind.DIGEST_MISMATCH, what + " size mismatch: expected " + d.size() + " bytes, registry sends " + len);
        }
        return new BlobStream(resp.body(), d.digest(), d.size(), what);
    }

    // ------------------------------------------------------------------------------------------------ transport

    /** Sends a GET to the registry API with auth, retries once after a 401 challenge, follows redirects. */
    private HttpResponse<InputStream> send(Ctx ctx, String path, String accept) throws RegistryException {
        String base = scheme(ctx) + "://" + ctx.host();
        URI uri = URI.create(base + path);
        String auth = authorization(ctx, challenges.get(ctx.host()), false);
        HttpResponse<InputStream> resp = sendFollowing(ctx, uri, accept, auth);
        if (resp.statusCode() == 401 && sameOrigin(uri, resp.uri())) {
            closeQuietly(resp.body());
            AuthChallenge ch = AuthChallenge.pick(resp.headers().allValues("WWW-Authenticate"));
            if (ch == null) {
                throw new RegistryException(Kind.AUTH, "registry " + ctx.ref.registry() + " refused access (HTTP 401) without a usable"
                    + " authentication challenge");
            }
            challenges.put(ctx.host(), ch);
            if (ch.isBasic() && auth != null && auth.startsWith("Basic ")) throw wrongCredentials(ctx, null);
            if (ch.isBasic() && ctx.creds.anonymous()) {
                throw new RegistryException(Kind.AUTH, "registry " + ctx.ref.registry() + " requires credentials to pull "
                    + ctx.ref.repository());
            }
            String retryAuth = authorization(ctx, ch, true);
            resp = sendFollowing(ctx, uri, accept, retryAuth);
            if (resp.statusCode() == 401 && sameOrigin(uri, resp.uri())) {
                closeQuietly(resp.body());
                throw ctx.creds.anonymous() ? denied(ctx, 401)
                    : ch.isBasic() ? wrongCredentials(ctx, null) : denied(ctx, 401);
            }
        }
        return resp;
    }

    private HttpResponse<InputStream> sendFollowing(Ctx ctx, URI uri, String accept, String auth) throws RegistryException {
        URI origin = uri;
        URI current = uri;
        for (int hop = 0; ; hop++) {
            checkTransport(current);
            boolean sameOrigin = sameOrigin(origin, current);
            HttpRequest.Builder b = HttpRequest.newBuilder(current).GET()
                .timeout(cfg.requestTimeout())
                .header("User-Agent", cfg.userAgent());
            if (current.getScheme().equals("http")) b.version(HttpClient.Version.HTTP_1_1);
            if (sameOrigin) {
                b.header("Accept", accept);
                if (auth != null) b.header("Authorization", auth);
            }
            HttpResponse<InputStream> resp = execute(ctx, b.build());
            int sc = resp.statusCode();
            if (sc == 301 || sc == 302 || sc == 303 || sc == 307 || sc == 308) {
                String loc = resp.headers().firstValue("Location").orElse(null);
                closeQuietly(resp.body());
                if (loc == null) throw new RegistryException(Kind.PROTOCOL, "registry " + ctx.ref.registry() + " sent a redirect without Location");
                if (hop >= MAX_REDIRECTS) throw new RegistryException(Kind.PROTOCOL, "too many redirects from registry " + ctx.ref.registry());
                try {
                    current = current.resolve(loc);
                } catch (IllegalArgumentException e) {
                    throw new RegistryException(Kind.PROTOCOL, "registry " + ctx.ref.registry() + " sent an invalid redirect location");
                }
                continue;
            }
            return resp;
        }
    }

    private HttpResponse<InputStream> execute(Ctx ctx, HttpRequest req) throws RegistryException {
        if (ctx.cancel.isCancelled()) throw new RegistryException(Kind.CANCELLED, "cancelled");
        String where = req.uri().getHost() + (req.uri().getPort() > 0 ? ":" + req.uri().getPort() : "");
        try {
            log.debug("GET {}", redact(req.uri()));
            return http.send(req, HttpResponse.BodyHandlers.ofInputStream());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RegistryException(Kind.CANCELLED, "interrupted while talking to " + where);
        } catch (HttpConnectTimeoutException e) {
            throw new RegistryException(Kind.NETWORK, "timed out connecting to " + where, e);
        } catch (HttpTimeoutException e) {
            throw new RegistryException(Kind.NETWORK, "timed out waiting for " + where + " to respond", e);
        } catch (ConnectException e) {
            throw new RegistryException(Kind.NETWORK, "cannot connect to " + where + ": " + Objects.requireNonNullElse(e.getMessage(), "connection refused"), e);
        } catch (SSLException e) {
            throw new RegistryException(Kind.NETWORK, "TLS error talking to " + where + ": " + e.getMessage(), e);
        } catch (IOException e) {
            throw new RegistryException(Kind.NETWORK, "network error talking to " + where + ": " + e.getMessage(), e);
        }
    }

    /** Refuses plain HTTP to hosts that are neither loopback nor configured insecure; refuses non-HTTP schemes. */
    void checkTransport(URI uri) throws RegistryException {
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        String host = uri.getHost();
        if (host == null) throw new RegistryException(Kind.PROTOCOL, "invalid URL from registry (no host)");
        String hostPort = (host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host) + (uri.getPort() > 0 ? ":" + uri.getPort() : "");
        if (scheme.equals("https")) return;
        if (scheme.equals("http")) {
            if (cfg.plainHttpAllowed(hostPort)) return;
            throw new RegistryException(Kind.INSECURE, "refusing plain HTTP to " + hostPort + " (only HTTPS is allowed; plain HTTP"
                + " is permitted for loopback and configured insecure registries)");
        }
        throw new RegistryException(Kind.INSECURE, "refusing URL scheme '" + scheme + "' (" + hostPort + ")");
    }

    /** Scheme for the registry, learned by pinging {@code /v2/}. The ping also records an auth challenge. */
    private String scheme(Ctx ctx) throws RegistryException {
        String host = ctx.host();
        String known = schemes.get(host);
        if (known != null) return known;
        List<String> candidates;
        if (ctx.ref.isLoopback()) candidates = List.of("http", "https");
        else if (cfg.plainHttpAllowed(host)) candidates = List.of("https", "http");
        else candidates = List.of("https");
        RegistryException last = null;
        for (String s : candidates) {
            URI ping = URI.create(s + "://" + host + "/v2/");
            HttpResponse<InputStream> resp;
            try {
                resp = sendFollowing(ctx, ping, "application/json", null);
            } catch (RegistryException e) {
                if (e.kind() != Kind.NETWORK) throw e;
                last = e;
                continue;
            }
            closeQuietly(resp.body());
            int sc = resp.statusCode();
            if (sc == 401) {
                AuthChallenge ch = AuthChallenge.pick(resp.headers().allValues("WWW-Authenticate"));
                if (ch != null) challenges.put(host, ch);
            } else if (sc != 200 && sc != 404 && sc != 403) {
                // 404: some registries do not implement /v2/ but serve the rest; anything else is not a registry
                // (or, e.g. HTTP 400, a TLS port spoken to in plain HTTP: try the next scheme)
                last = sc >= 500 || sc == 429
                    ? new RegistryException(Kind.NETWORK, "registry " + ctx.ref.registry() + " answered HTTP " + sc)
                    : new RegistryException(Kind.PROTOCOL, host + " does not look like a Docker/OCI registry (GET /v2/ answered HTTP " + sc + ")");
                continue;
            }
            schemes.put(host, s);
            return s;
        }
        throw last;
    }

    // ------------------------------------------------------------------------------------------------ auth

    /** Authorization header value for a challenge (fetching a token if needed), or null. */
    private String authorization(Ctx ctx, AuthChallenge ch, boolean forceNewToken) throws RegistryException {
        if (ch == null) return null;
        if (ch.isBasic()) {
            if (ctx.creds.anonymous()) return null;
            return "Basic " + Base64.getEncoder().encodeToString(
                (ctx.creds.username() + ":" + ctx.creds.password()).getBytes(StandardCharsets.UTF_8));
        }
        if (!ch.isBearer()) return null;
        String scope = ch.scope() != null && ch.scope().startsWith("repository:" + ctx.ref.repository() + ":") ? ch.scope() : ctx.scope();
        String key = String.join("|", ctx.host(), ch.realm(), Objects.requireNonNullElse(ch.service(), ""), scope,
            ctx.creds.username(), sha256(ctx.creds.password().getBytes(StandardCharsets.UTF_8)));
        CachedToken t = tokens.get(key);
        if (!forceNewToken && t != null && Instant.now().isBefore(t.expires)) return "Bearer " + t.token;
        t = fetchToken(ctx, ch, scope);
        tokens.put(key, t);
        return "Bearer " + t.token;
    }

    private CachedToken fetchToken(Ctx ctx, AuthChallenge ch, String scope) throws RegistryException {
        URI realm;
        try {
            realm = URI.create(ch.realm());
        } catch (IllegalArgumentException e) {
            throw new RegistryException(Kind.PROTOCOL, "registry " + ctx.ref.registry() + " sent an invalid token realm");
        }
        StringBuilder q = new StringBuilder();
        if (ch.service() != null) q.append("service=").append(URLEncoder.encode(ch.service(), StandardCharsets.UTF_8));
        if (!q.isEmpty()) q.append('&');
        q.append("scope=").append(URLEncoder.encode(scope, StandardCharsets.UTF_8));
        String r = realm.toString();
        URI uri = URI.create(r + (r.contains("?") ? "&" : "?") + q);
        checkTransport(uri); // never send credentials over plain HTTP to a non-allowed host
        if (realm.getHost() == null) throw new RegistryException(Kind.PROTOCOL, "registry " + ctx.ref.registry() + " sent an invalid token realm");
        String basic = ctx.creds.anonymous() ? null : "Basic " + Base64.getEncoder().encodeToString(
            (ctx.creds.username() + ":" + ctx.creds.password()).getBytes(StandardCharsets.UTF_8));
        HttpResponse<InputStream> resp = sendFollowing(ctx, uri, "application/json", basic);
        byte[] body;
        try (InputStream in = resp.body()) {
            int sc = resp.statusCode();
            if (sc == 401 || sc == 403) {
                if (ctx.creds.anonymous()) {
                    throw new RegistryException(Kind.AUTH, "registry " + ctx.ref.registry() + " requires credentials to pull "
                        + ctx.ref.repository() + " (anonymous token refused)");
                }
                throw wrongCredentials(ctx, sc);
            }
            if (sc != 200) {
                throw new RegistryException(sc >= 500 || sc == 429 ? Kind.NETWORK : Kind.PROTOCOL,
                    "token service of registry " + ctx.ref.registry() + " answered HTTP " + sc);
            }
            body = readCapped(in, 1 << 20, "token response");
        } catch (IOException e) {
            throw new RegistryException(Kind.NETWORK, "network error while fetching a token from " + realm.getHost() + ": " + e.getMessage(), e);
        }
        OciJson.TokenResponse n;
        try {
            n = OciJson.tokenResponse(body).orElse(new OciJson.TokenResponse(null, null, null));
        } catch (OciJson.InvalidJson e) {
            throw new RegistryException(Kind.PROTOCOL, "token service of registry " + ctx.ref.registry() + " returned invalid JSON");
        }
        String token = Objects.requireNonNullElse(n.token(), "");
        if (token.isEmpty()) token = Objects.requireNonNullElse(n.accessToken(), "");
        if (token.isEmpty()) throw new RegistryException(Kind.PROTOCOL, "token service of registry " + ctx.ref.registry() + " returned no token");
        long ttl = n.expiresIn() == null ? 60 : n.expiresIn();
        if (ttl < 60) ttl = 60; // per the distribution token spec, minimum lifetime is 60 s
        return new CachedToken(token, Instant.now().plusSeconds(ttl - 10));
    }

    private RegistryException wrongCredentials(Ctx ctx, Integer status) {
        return new RegistryException(Kind.AUTH, "authentication failed for user '" + ctx.creds.username() + "' at registry "
            + ctx.ref.registry() + ": wrong username or password" + (status != null ? " (HTTP " + status + ")" : ""));
    }

    private RegistryException denied(Ctx ctx, int status) {
        String who = ctx.creds.anonymous() ? "anonymous access" : "user '" + ctx.creds.username() + "'";
        return new RegistryException(Kind.AUTH, "access to " + ctx.ref.repository() + " on registry " + ctx.ref.registry()
            + " denied for " + who + " (HTTP " + status + "; the repository may not exist or needs "
            + (ctx.creds.anonymous() ? "credentials)" : "other credentials)"));
    }

    // ------------------------------------------------------------------------------------------------ errors

    private RegistryException statusError(Ctx ctx, HttpResponse<InputStream> resp, String what) {
        int sc = resp.statusCode();
        String detail = "";
        String code = "";
        try (InputStream in = resp.body()) {
            byte[] b = readCapped(in, 64 << 10, "error body");
            List<OciJson.ErrorEntry> errors = OciJson.errorResponse(b).map(OciJson.ErrorResponse::errors).orElse(null);
            OciJson.ErrorEntry e = errors == null || errors.isEmpty() ? null : errors.getFirst();
            if (e != null) {
                code = Objects.requireNonNullElse(e.code(), "");
                detail = Objects.requireNonNullElse(e.message(), "");
            }
        } catch (Exception ignored) {
            // not JSON: no detail
        }
        detail = sanitize(ctx, detail);
        String suffix = detail.isEmpty() ? "" : " (" + (code.isEmpty() ? "" : code + ": ") + detail + ")";
        ImageReference ref = ctx.ref;
        return switch (sc) {
            case 404 -> new RegistryException(Kind.NOT_FOUND, switch (code) {
                case "NAME_UNKNOWN" -> "repository " + ref.repository() + " not found on registry " + ref.registry();
                case "MANIFEST_UNKNOWN" -> "image " + ref + " not found (" + what + " is unknown to the registry)";
                case "BLOB_UNKNOWN" -> what + " of " + ref + " not found on registry " + ref.registry();
                default -> "image " + ref + " not found: " + what + " (HTTP 404)" + suffix;
            });
            case 401 -> denied(ctx, 401);
            case 403 -> denied(ctx, 403);
            case 429 -> new RegistryException(Kind.NETWORK, "registry " + ref.registry() + " is rate limiting requests (HTTP 429); try again later");
            default -> new RegistryException(sc >= 500 ? Kind.NETWORK : Kind.PROTOCOL,
                "registry " + ref.registry() + " answered HTTP " + sc + " for " + what + " of " + ref + suffix);
        };
    }

    private static String sanitize(Ctx ctx, String s) {
        if (s.length() > 300) s = s.substring(0, 300) + "…";
        String pw = ctx.creds.password();
        if (pw.length() >= 3) s = s.replace(pw, "***");
        return s.replaceAll("[\\p{Cntrl}]", " ");
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private static boolean sameOrigin(URI a, URI b) {
        return a.getScheme().equalsIgnoreCase(b.getScheme()) && a.getHost().equalsIgnoreCase(b.getHost())
            && effectivePort(a) == effectivePort(b);
    }

    private static int effectivePort(URI u) {
        return u.getPort() > 0 ? u.getPort() : u.getScheme().equalsIgnoreCase("https") ? 443 : 80;
    }

    private static String redact(URI u) {
        return u.getScheme() + "://" + u.getRawAuthority() + u.getRawPath();
    }

    private static byte[] readCapped(InputStream in, int max, String what) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) >= 0) {
            out.write(buf, 0, n);
            if (out.size() > max) throw new IOException(what + " is larger than " + max + " bytes");
        }
        return out.toByteArray();
    }

    private static void closeQuietly(InputStream in) {
        try {
            in.close();
        } catch (IOException ignored) {
            // nothing
        }
    }

    static String sha256(byte[] b) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}

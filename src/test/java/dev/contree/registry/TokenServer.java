package dev.contree.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A minimal Docker distribution token server (the Bearer flow used by Docker Hub, ghcr.io, ...) for
 * {@link TestRegistry#startToken}: {@code GET /token?service=&scope=} with optional Basic credentials. Right
 * credentials get every requested action; no credentials get a token without access (the registry then refuses
 * with 401, like Docker Hub for private repositories); wrong credentials get 401. Tokens are RS256 JWTs with an
 * {@code x5c} header signed by a self-signed certificate made with {@code keytool}.
 */
public final class TokenServer implements AutoCloseable {
    public static final String SERVICE = "contree-test-registry";
    public static final String ISSUER = "contree-test-issuer";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final HttpServer server;
    private final String user;
    private final String password;
    private final Path certBundle;
    private final PrivateKey key;
    private final String x5c;
    public final AtomicInteger requests = new AtomicInteger();
    public final AtomicInteger anonymousRequests = new AtomicInteger();

    private TokenServer(HttpServer server, String user, String password, Path certBundle, PrivateKey key, String x5c) {
        this.server = server;
        this.user = user;
        this.password = password;
        this.certBundle = certBundle;
        this.key = key;
        this.x5c = x5c;
    }

    public static TokenServer start(Path workDir, String user, String password) throws Exception {
        Path dir = Files.createDirectories(workDir.resolve("tokens-" + System.nanoTime()));
        Path ks = dir.resolve("ks.p12");
        TestRegistry.run(List.of(Path.of(System.getProperty("java.home"), "bin", "keytool").toString(),
            "-genkeypair", "-alias", "token", "-keyalg", "RSA", "-keysize", "2048", "-validity", "3",
            "-dname", "CN=contree-test-token", "-storetype", "PKCS12", "-keystore", ks.toString(),
            "-storepass", "changeit", "-keypass", "changeit"), dir);
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(ks)) {
            store.load(in, "changeit".toCharArray());
        }
        PrivateKey key = (PrivateKey) store.getKey("token", "changeit".toCharArray());
        Certificate cert = store.getCertificate("token");
        byte[] der = cert.getEncoded();
        Path pem = dir.resolve("root.pem");
        Files.writeString(pem, "-----BEGIN CERTIFICATE-----\n"
            + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der)
            + "\n-----END CERTIFICATE-----\n");
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        TokenServer ts = new TokenServer(server, user, password, pem, key, Base64.getEncoder().encodeToString(der));
        server.createContext("/token", ts::handle);
        server.start();
        return ts;
    }

    public String realm() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/token";
    }

    public Path certBundle() {
        return certBundle;
    }

    public String user() {
        return user;
    }

    public String password() {
        return password;
    }

    private void handle(HttpExchange ex) throws IOException {
        requests.incrementAndGet();
        try (ex) {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            String subject = "";
            boolean grant;
            if (auth == null) {
                anonymousRequests.incrementAndGet();
                grant = false;
            } else {
                String expected = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
                if (!expected.equals(auth)) {
                    byte[] body = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"invalid username or password\"}]}"
                        .getBytes(StandardCharsets.UTF_8);
                    ex.getResponseHeaders().add("Content-Type", "application/json");
                    ex.sendResponseHeaders(401, body.length);
                    ex.getResponseBody().write(body);
                    return;
                }
                grant = true;
                subject = user;
            }
            List<String> scopes = new ArrayList<>();
            String q = ex.getRequestURI().getRawQuery();
            if (q != null) {
                for (String kv : q.split("&")) {
                    int i = kv.indexOf('=');
                    if (i > 0 && kv.substring(0, i).equals("scope")) scopes.add(URLDecoder.decode(kv.substring(i + 1), StandardCharsets.UTF_8));
                }
            }
            long now = System.currentTimeMillis() / 1000;
            ObjectNode claims = JSON.createObjectNode();
            claims.put("iss", ISSUER);
            claims.put("sub", subject);
            claims.put("aud", SERVICE);
            claims.put("exp", now + 300);
            claims.put("nbf", now - 10);
            claims.put("iat", now);
            claims.put("jti", UUID.randomUUID().toString());
            ArrayNode access = claims.putArray("access");
            if (grant) {
                for (String scope : scopes) {
                    int a = scope.indexOf(':'), b = scope.lastIndexOf(':');
                    if (a < 0 || b <= a) continue;
                    ObjectNode e = access.addObject();
                    e.put("type", scope.substring(0, a));
                    e.put("name", scope.substring(a + 1, b));
                    ArrayNode actions = e.putArray("actions");
                    for (String act : scope.substring(b + 1).split(",")) actions.add(act);
                }
            }
            ObjectNode header = JSON.createObjectNode();
            header.put("typ", "JWT");
            header.put("alg", "RS256");
            header.putArray("x5c").add(x5c);
            Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
            String signingInput = b64.encodeToString(JSON.writeValueAsBytes(header)) + "." + b64.encodeToString(JSON.writeValueAsBytes(claims));
            Signature sig = Signature.getInstance("SHA256withRSA");
            sig.initSign(key);
            sig.update(signingInput.getBytes(StandardCharsets.US_ASCII));
            String jwt = signingInput + "." + b64.encodeToString(sig.sign());
            ObjectNode resp = JSON.createObjectNode();
            resp.put("token", jwt);
            resp.put("access_token", jwt);
            resp.put("expires_in", 300);
            byte[] body = JSON.writeValueAsBytes(resp);
            ex.getResponseHeaders().add("Content-Type", "application/json");
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
        } catch (IOException e) {
            throw e;
        } catch (Exception e) {
            throw new IOException(e);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}

package dev.contree.objects;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

/**
 * {@code s3://bucket[/prefix][?endpoint=http://host:port&region=name]}: an S3 bucket, the key prefix under which
 * this cluster's objects live, and for an S3-compatible service other than AWS its endpoint (addressed path-style,
 * {@code http://host:port/bucket/key}, which every such service understands). Credentials are never part of it:
 * they come from the environment as the AWS SDK finds them ({@code AWS_ACCESS_KEY_ID}/{@code AWS_SECRET_ACCESS_KEY},
 * a profile, an instance role).
 *
 * @param region null: the SDK's region chain ({@code AWS_REGION}, the profile), else {@code us-east-1} with an endpoint
 */
public record ObjectStoreUrl(String bucket, String prefix, URI endpoint, String region) {
    // S3's bucket naming rules (lowercase, digits, dots, hyphens; 3-63).
    private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
    private static final Pattern PREFIX = Pattern.compile("[A-Za-z0-9._/-]{0,200}");
    private static final Pattern REGION = Pattern.compile("[a-z0-9-]{1,32}");

    public ObjectStoreUrl {
        if (bucket == null || !BUCKET.matcher(bucket).matches()) throw new IllegalArgumentException("bad bucket name: " + bucket);
        prefix = prefix == null ? "" : prefix;
        if (!PREFIX.matcher(prefix).matches() || prefix.contains("//") || prefix.startsWith("/") || prefix.contains(".."))
            throw new IllegalArgumentException("bad key prefix '" + prefix + "' (letters, digits, . _ - and /)");
        if (!prefix.isEmpty() && !prefix.endsWith("/")) prefix = prefix + "/";
        if (endpoint != null && !("http".equals(endpoint.getScheme()) || "https".equals(endpoint.getScheme())) || endpoint != null && endpoint.getHost() == null)
            throw new IllegalArgumentException("the endpoint must be an http:// or https:// URL with a host: " + endpoint);
        if (region != null && !REGION.matcher(region).matches()) throw new IllegalArgumentException("bad region: " + region);
    }

    public static ObjectStoreUrl parse(String url) {
        if (url == null || !url.startsWith("s3://"))
            throw new IllegalArgumentException("an object store looks like s3://bucket/prefix?endpoint=http://host:port&region=name");
        String rest = url.substring("s3://".length());
        String query = null;
        int q = rest.indexOf('?');
        if (q >= 0) {
            query = rest.substring(q + 1);
            rest = rest.substring(0, q);
        }
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String prefix = slash < 0 ? "" : rest.substring(slash + 1);
        URI endpoint = null;
        String region = null;
        if (query != null && !query.isEmpty()) {
            for (String pair : query.split("&")) {
                int eq = pair.indexOf('=');
                String k = eq < 0 ? pair : pair.substring(0, eq);
                String v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
                switch (k) {
                    case "endpoint" -> {
                        try {
                            endpoint = URI.create(v);
                        } catch (IllegalArgumentException e) {
                            throw new IllegalArgumentException("bad endpoint: " + v);
                        }
                    }
                    case "region" -> region = v;
                    default -> throw new IllegalArgumentException("unknown object store parameter '" + k + "' (endpoint, region)");
                }
            }
        }
        return new ObjectStoreUrl(bucket, prefix, endpoint, region);
    }

    @Override
    public String toString() {
        return "s3://" + bucket + "/" + prefix + (endpoint == null ? "" : " at " + endpoint);
    }
}

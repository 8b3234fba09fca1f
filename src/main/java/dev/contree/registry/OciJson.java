package dev.contree.registry;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static com.fasterxml.jackson.annotation.JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY;

/**
 * The JSON documents of OCI and Docker images as typed records, modelled on Jib's templates
 * ({@code ManifestTemplate}, {@code ContainerConfigurationTemplate}): the one place that knows their field names,
 * used by the registry client and by archive imports alike.
 *
 * <p>The records mirror the JSON: a field absent (or null) in the document is null in the record, so callers can
 * tell "missing" from "empty" and say which one they refuse. Unknown fields are ignored, scalars are coerced the way
 * registries expect (a size sent as a string, a user id as a number), and in a container configuration a single
 * string stands for a one-element list ({@code "Cmd": "sh"}); elsewhere a list must be a list. A document whose top level is not an object parses to an empty result rather than an
 * error: each caller decides whether that is fatal.
 */
public final class OciJson {
    private static final ObjectMapper JSON = new ObjectMapper()
        .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private OciJson() {}

    /**
     * An image manifest (OCI or Docker v2.2: {@code config} and {@code layers}) or an index / manifest list
     * ({@code manifests}). Registries do not always say which in {@code mediaType}, so one record holds both
     * shapes and the caller tells them apart by what is present.
     */
    public record Manifest(Integer schemaVersion, String mediaType, ContentDescriptor config,
                           List<ContentDescriptor> layers, List<ContentDescriptor> manifests) {}

    /** A content descriptor as written: any field may be missing. {@code platform} appears in index entries. */
    public record ContentDescriptor(String mediaType, String digest, Long size, Platform platform) {
        /** Stands for a descriptor that is absent (or null) in the document. */
        public static final ContentDescriptor ABSENT = new ContentDescriptor(null, null, null, null);
    }

    /** The platform of an index entry. */
    public record Platform(String os, String architecture, String variant) {}

    /** An image config blob ({@code application/vnd.oci.image.config.v1+json} or Docker's container config). */
    public record Configuration(String os, String architecture, ContainerConfiguration config, RootFs rootfs) {
        /** The parts ConTree uses; absent strings become "", absent lists empty. */
        public ImageConfig toImageConfig() {
            ContainerConfiguration c = config != null ? config : new ContainerConfiguration(null, null, null, null, null);
            return new ImageConfig(present(c.env()), c.workingDir(), c.user(), present(c.entrypoint()), present(c.cmd()), os,
                architecture);
        }

        /** {@code rootfs.diff_ids}: the sha256 of each uncompressed layer, bottom first; empty when absent. */
        public List<String> diffIds() {
            return rootfs == null ? List.of() : present(rootfs.diffIds());
        }
    }

    /** The {@code config} object of an image config: how to run the image. */
    public record ContainerConfiguration(@JsonProperty("Env") @JsonFormat(with = ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> env,
                                         @JsonProperty("WorkingDir") String workingDir,
                                         @JsonProperty("User") String user,
                                         @JsonProperty("Entrypoint") @JsonFormat(with = ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> entrypoint,
                                         @JsonProperty("Cmd") @JsonFormat(with = ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> cmd) {}

    /** The {@code rootfs} object of an image config. */
    public record RootFs(String type, @JsonProperty("diff_ids") List<String> diffIds) {}

    /** One image in a {@code docker save} archive's {@code manifest.json}: paths inside the archive. */
    public record DockerArchiveImage(@JsonProperty("Config") String config, @JsonProperty("Layers") List<String> layers) {}

    /** A token service's answer (the distribution token spec allows either field name for the token). */
    record TokenResponse(String token, @JsonProperty("access_token") String accessToken, @JsonProperty("expires_in") Long expiresIn) {}

    /** A registry's error body: {@code {"errors":[{"code":…,"message":…}]}}. */
    record ErrorResponse(List<ErrorEntry> errors) {}

    record ErrorEntry(String code, String message) {}

    /** The bytes are not JSON, or a field has a type the record cannot hold (an object where a string belongs). */
    public static final class InvalidJson extends Exception {
        private final boolean syntax;

        InvalidJson(String detail, boolean syntax, Throwable cause) {
            super(detail, cause, false, false);
            this.syntax = syntax;
        }

        /** True: not JSON at all. False: JSON, but not the document expected. */
        public boolean isSyntaxError() {
            return syntax;
        }
    }

    /** A manifest or index; empty if the document is JSON but not an object. */
    public static Optional<Manifest> manifest(byte[] json) throws InvalidJson {
        return object(tree(json), Manifest.class);
    }

    /** An image config; empty if the document is JSON but not an object. */
    public static Optional<Configuration> configuration(byte[] json) throws InvalidJson {
        return object(tree(json), Configuration.class);
    }

    /** The images of a {@code docker save} {@code manifest.json}; empty if it is not an array. */
    public static List<DockerArchiveImage> dockerArchive(byte[] json) throws InvalidJson {
        JsonNode root = tree(json);
        List<DockerArchiveImage> out = new ArrayList<>();
        if (root == null || !root.isArray()) return out;
        for (JsonNode image : root) out.add(object(image, DockerArchiveImage.class).orElse(new DockerArchiveImage(null, null)));
        return out;
    }

    static Optional<TokenResponse> tokenResponse(byte[] json) throws InvalidJson {
        return object(tree(json), TokenResponse.class);
    }

    static Optional<ErrorResponse> errorResponse(byte[] json) throws InvalidJson {
        return object(tree(json), ErrorResponse.class);
    }

    private static JsonNode tree(byte[] json) throws InvalidJson {
        try {
            return JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new InvalidJson(e.getOriginalMessage(), true, e);
        } catch (IOException e) {
            throw new InvalidJson(e.getMessage(), true, e);
        }
    }

    private static <T> Optional<T> object(JsonNode node, Class<T> type) throws InvalidJson {
        if (node == null || !node.isObject()) return Optional.empty();
        try {
            return Optional.of(JSON.treeToValue(node, type));
        } catch (JsonProcessingException e) {
            throw new InvalidJson(e.getOriginalMessage(), false, e);
        }
    }

    /** The list without nulls ({@code "Env": ["A=1", null]} keeps "A=1"); empty when absent. */
    static List<String> present(List<String> list) {
        if (list == null) return List.of();
        List<String> out = new ArrayList<>(list.size());
        for (String s : list) if (s != null) out.add(s);
        return out;
    }
}

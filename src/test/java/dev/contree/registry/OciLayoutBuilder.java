package dev.contree.registry;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.luben.zstd.ZstdOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * Builds OCI image layouts (a directory with {@code oci-layout}, {@code index.json}, {@code blobs/sha256/...}) without
 * network or Docker, for pushing to a test registry with {@code skopeo copy oci:<dir>:<tag> docker://...}
 * (see {@link TestRegistry#push}).
 *
 * <pre>{@code
 * OciLayoutBuilder.Image img = new OciLayoutBuilder()
 *     .layer(Compression.GZIP, OciLayoutBuilder.busyboxRootfs())
 *     .layer(Compression.ZSTD, new OciLayoutBuilder.Tar().file("etc/motd", "hi\n").whiteout("tmp/gone"))
 *     .env("PATH=/bin", "FOO=bar").workingDir("/work").user("1000:1000").cmd("/bin/sh")
 *     .writeLayout(dir, "v1");
 * }</pre>
 *
 * One layout directory may hold several tags: call {@code writeLayout} repeatedly with the same directory.
 */
public final class OciLayoutBuilder {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A tar layer's contents, in order. Paths are relative (no leading '/'). */
    public static final class Tar {
        private record Entry(String path, byte type, byte[] content, int mode, String linkTarget) {}

        private final List<Entry> entries = new ArrayList<>();

        public Tar dir(String path) {
            return dir(path, 0755);
        }

        public Tar dir(String path, int mode) {
            entries.add(new Entry(path.endsWith("/") ? path : path + "/", TarArchiveEntry.LF_DIR, null, mode, null));
            return this;
        }

        public Tar file(String path, String content) {
            return file(path, content.getBytes(StandardCharsets.UTF_8), 0644);
        }

        public Tar file(String path, byte[] content, int mode) {
            entries.add(new Entry(path, TarArchiveEntry.LF_NORMAL, content, mode, null));
            return this;
        }

        public Tar symlink(String path, String target) {
            entries.add(new Entry(path, TarArchiveEntry.LF_SYMLINK, null, 0777, target));
            return this;
        }

        public Tar hardlink(String path, String target) {
            entries.add(new Entry(path, TarArchiveEntry.LF_LINK, null, 0644, target));
            return this;
        }

        /** OCI whiteout: {@code dir/.wh.name} deletes {@code dir/name} from lower layers. */
        public Tar whiteout(String path) {
            int i = path.lastIndexOf('/');
            String wh = i < 0 ? ".wh." + path : path.substring(0, i + 1) + ".wh." + path.substring(i + 1);
            return file(wh, new byte[0], 0644);
        }

        /** OCI opaque directory marker: hides everything below {@code dir} from lower layers. */
        public Tar opaque(String dir) {
            return file((dir.endsWith("/") ? dir : dir + "/") + ".wh..wh..opq", new byte[0], 0644);
        }

        /** The uncompressed tar bytes. */
        public byte[] toBytes() {
            ByteArrayOutputStream bout = new ByteArrayOutputStream();
            try (TarArchiveOutputStream tar = new TarArchiveOutputStream(bout)) {
                tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
                tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
                for (Entry e : entries) {
                    TarArchiveEntry te = e.type == TarArchiveEntry.LF_NORMAL || e.type == TarArchiveEntry.LF_DIR
                        ? new TarArchiveEntry(e.path) : new TarArchiveEntry(e.path, e.type);
                    te.setMode((e.type == TarArchiveEntry.LF_DIR ? 040000 : e.type == TarArchiveEntry.LF_SYMLINK ? 0120000 : 0100000) | e.mode);
                    te.setModTime(0);
                    te.setUserId(0);
                    te.setGroupId(0);
                    if (e.linkTarget != null) te.setLinkName(e.linkTarget);
                    if (e.content != null) te.setSize(e.content.length);
                    tar.putArchiveEntry(te);
                    if (e.content != null) tar.write(e.content);
                    tar.closeArchiveEntry();
                }
                tar.finish();
            } catch (IOException ex) {
                throw new UncheckedIOException(ex);
            }
            return bout.toByteArray();
        }
    }

    /** A minimal runnable rootfs: static /bin/busybox (from busybox-static) with sh/ls/cat/echo links, /etc, /tmp. */
    public static Tar busyboxRootfs() {
        try {
            byte[] bb = Files.readAllBytes(Path.of("/bin/busybox"));
            Tar t = new Tar().dir("bin").file("bin/busybox", bb, 0755);
            for (String applet : List.of("sh", "ls", "cat", "echo", "env", "id", "pwd", "true", "false", "sleep")) {
                t.symlink("bin/" + applet, "busybox");
            }
            return t.dir("etc").file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
                .file("etc/group", "root:x:0:\nnogroup:x:65534:\n").dir("root", 0700).dir("tmp", 01777);
        } catch (IOException e) {
            throw new UncheckedIOException("needs /bin/busybox (Debian package busybox-static)", e);
        }
    }

    /** What was written for one image (one platform). */
    public record Image(String manifestDigest, long manifestSize, String configDigest, List<Descriptor> layers,
                        List<String> diffIds, String architecture) {
        public Descriptor manifestDescriptor() {
            return new Descriptor(RegistryClient.OCI_MANIFEST, manifestDigest, manifestSize);
        }
    }

    /** What was written for a multi-platform index. */
    public record Index(String indexDigest, List<Image> images) {}

    private record LayerSpec(Compression compression, Tar tar, String mediaTypeOverride) {}

    private final List<LayerSpec> layers = new ArrayList<>();
    private final List<String> env = new ArrayList<>();
    private String workingDir;
    private String user;
    private List<String> entrypoint;
    private List<String> cmd;
    private String os = "linux";
    private String architecture = "amd64";
    private String variant;
    private boolean dockerMediaTypes;

    public OciLayoutBuilder layer(Compression c, Tar tar) {
        layers.add(new LayerSpec(c, tar, null));
        return this;
    }

    /** A layer with an explicit media type (e.g. to test unsupported types); compressed as {@code c}. */
    public OciLayoutBuilder layer(Compression c, Tar tar, String mediaType) {
        layers.add(new LayerSpec(c, tar, mediaType));
        return this;
    }

    public OciLayoutBuilder env(String... kv) {
        env.addAll(List.of(kv));
        return this;
    }

    public OciLayoutBuilder workingDir(String d) {
        workingDir = d;
        return this;
    }

    public OciLayoutBuilder user(String u) {
        user = u;
        return this;
    }

    public OciLayoutBuilder entrypoint(String... e) {
        entrypoint = List.of(e);
        return this;
    }

    public OciLayoutBuilder cmd(String... c) {
        cmd = List.of(c);
        return this;
    }

    public OciLayoutBuilder platform(String os, String architecture, String variant) {
        this.os = os;
        this.architecture = architecture;
        this.variant = variant;
        return this;
    }

    /**
     * Use Docker schema 2 media types (manifest, config, {@code rootfs.diff.tar.gzip} layers) instead of OCI ones.
     * Only gzip / uncompressed layers are representable.
     */
    public OciLayoutBuilder dockerMediaTypes() {
        dockerMediaTypes = true;
        return this;
    }

    /** Writes blobs and the manifest into {@code dir} and tags it {@code tag} in {@code index.json}. */
    public Image writeLayout(Path dir, String tag) throws IOException {
        Image img = writeBlobs(dir);
        // containers/image only looks at OCI media types in index.json; it sniffs the blob's real type itself
        addToIndex(dir, tag, RegistryClient.OCI_MANIFEST, img.manifestDigest, img.manifestSize, null);
        return img;
    }

    /** Writes an OCI image index of several platform images into {@code dir}, tagged {@code tag}. */
    public static Index writeIndex(Path dir, String tag, List<OciLayoutBuilder> platforms) throws IOException {
        List<Image> images = new ArrayList<>();
        ObjectNode idx = JSON.createObjectNode();
        idx.put("schemaVersion", 2);
        idx.put("mediaType", RegistryClient.OCI_INDEX);
        ArrayNode ms = idx.putArray("manifests");
        for (OciLayoutBuilder b : platforms) {
            Image img = b.writeBlobs(dir);
            images.add(img);
            ObjectNode m = ms.addObject();
            m.put("mediaType", b.dockerMediaTypes ? RegistryClient.DOCKER_MANIFEST : RegistryClient.OCI_MANIFEST);
            m.put("digest", img.manifestDigest);
            m.put("size", img.manifestSize);
            ObjectNode p = m.putObject("platform");
            p.put("architecture", b.architecture);
            p.put("os", b.os);
            if (b.variant != null) p.put("variant", b.variant);
        }
        byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(idx);
        String digest = writeBlob(dir, bytes);
        addToIndex(dir, tag, RegistryClient.OCI_INDEX, digest, bytes.length, null);
        return new Index(digest, images);
    }

    private Image writeBlobs(Path dir) throws IOException {
        List<Descriptor> descs = new ArrayList<>();
        List<String> diffIds = new ArrayList<>();
        for (LayerSpec l : layers) {
            byte[] raw = l.tar.toBytes();
            diffIds.add(sha256(raw));
            byte[] blob = compress(l.compression, raw);
            String mt = l.mediaTypeOverride != null ? l.mediaTypeOverride : mediaType(l.compression);
            descs.add(new Descriptor(mt, writeBlob(dir, blob), blob.length));
        }
        ObjectNode config = JSON.createObjectNode();
        config.put("created", "2024-01-01T00:00:00Z");
        config.put("architecture", architecture);
        config.put("os", os);
        if (variant != null) config.put("variant", variant);
        ObjectNode c = config.putObject("config");
        if (!env.isEmpty()) env.forEach(c.putArray("Env")::add);
        if (workingDir != null) c.put("WorkingDir", workingDir);
        if (user != null) c.put("User", user);
        if (entrypoint != null) entrypoint.forEach(c.putArray("Entrypoint")::add);
        if (cmd != null) cmd.forEach(c.putArray("Cmd")::add);
        ObjectNode rootfs = config.putObject("rootfs");
        rootfs.put("type", "layers");
        diffIds.forEach(rootfs.putArray("diff_ids")::add);
        byte[] configBytes = JSON.writeValueAsBytes(config);
        String configDigest = writeBlob(dir, configBytes);

        ObjectNode m = JSON.createObjectNode();
        m.put("schemaVersion", 2);
        m.put("mediaType", dockerMediaTypes ? RegistryClient.DOCKER_MANIFEST : RegistryClient.OCI_MANIFEST);
        ObjectNode cd = m.putObject("config");
        cd.put("mediaType", dockerMediaTypes ? RegistryClient.DOCKER_CONFIG : RegistryClient.OCI_CONFIG);
        cd.put("digest", configDigest);
        cd.put("size", configBytes.length);
        ArrayNode la = m.putArray("layers");
        for (Descriptor d : descs) {
            ObjectNode ld = la.addObject();
            ld.put("mediaType", d.mediaType());
            ld.put("digest", d.digest());
            ld.put("size", d.size());
        }
        byte[] mb = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(m);
        String md = writeBlob(dir, mb);
        return new Image(md, mb.length, configDigest, descs, diffIds, architecture);
    }

    private String mediaType(Compression c) {
        if (dockerMediaTypes) {
            return switch (c) {
                case GZIP -> Descriptor.DOCKER_LAYER_GZIP;
                case NONE -> Descriptor.DOCKER_LAYER_TAR;
                case ZSTD -> throw new IllegalArgumentException("Docker schema 2 has no zstd layer type");
            };
        }
        return switch (c) {
            case GZIP -> Descriptor.OCI_LAYER_GZIP;
            case ZSTD -> Descriptor.OCI_LAYER_ZSTD;
            case NONE -> Descriptor.OCI_LAYER_TAR;
        };
    }

    static byte[] compress(Compression c, byte[] raw) throws IOException {
        if (c == Compression.NONE) return raw;
        ByteArrayOutputStream bout = new ByteArrayOutputStream();
        try (OutputStream out = c == Compression.GZIP ? new GZIPOutputStream(bout) : new ZstdOutputStream(bout)) {
            out.write(raw);
        }
        return bout.toByteArray();
    }

    /** Writes {@code bytes} to {@code dir/blobs/sha256/<hex>} and returns its digest. */
    public static String writeBlob(Path dir, byte[] bytes) throws IOException {
        String digest = sha256(bytes);
        Path p = dir.resolve("blobs/sha256/" + digest.substring(7));
        Files.createDirectories(p.getParent());
        if (!Files.exists(p)) Files.write(p, bytes);
        Path layout = dir.resolve("oci-layout");
        if (!Files.exists(layout)) Files.writeString(layout, "{\"imageLayoutVersion\":\"1.0.0\"}");
        return digest;
    }

    private static synchronized void addToIndex(Path dir, String tag, String mediaType, String digest, long size,
                                                Map<String, String> extra) throws IOException {
        Path ip = dir.resolve("index.json");
        ObjectNode idx;
        if (Files.exists(ip)) {
            idx = (ObjectNode) JSON.readTree(ip.toFile());
        } else {
            idx = JSON.createObjectNode();
            idx.put("schemaVersion", 2);
            idx.put("mediaType", RegistryClient.OCI_INDEX);
            idx.putArray("manifests");
        }
        ArrayNode ms = (ArrayNode) idx.get("manifests");
        for (int i = ms.size() - 1; i >= 0; i--) {
            if (tag.equals(ms.get(i).path("annotations").path("org.opencontainers.image.ref.name").asText(null))) ms.remove(i);
        }
        ObjectNode m = ms.addObject();
        m.put("mediaType", mediaType);
        m.put("digest", digest);
        m.put("size", size);
        Map<String, String> ann = new LinkedHashMap<>();
        ann.put("org.opencontainers.image.ref.name", tag);
        if (extra != null) ann.putAll(extra);
        ObjectNode an = m.putObject("annotations");
        ann.forEach(an::put);
        JSON.writerWithDefaultPrettyPrinter().writeValue(ip.toFile(), idx);
    }

    public static String sha256(byte[] b) {
        try {
            return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}

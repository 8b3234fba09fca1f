package dev.contree.imports;

import dev.contree.cancel.CancelToken;
import dev.contree.images.ImageConfig;
import dev.contree.registry.BlobStream;
import dev.contree.registry.Descriptor;
import dev.contree.registry.OciJson;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarFile;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An image from an uploaded, uncompressed tar archive: an OCI image layout ({@code oci-layout}, {@code index.json},
 * {@code blobs/sha256/…}; what {@code skopeo copy … oci-archive:} and {@code docker save} of recent Docker write) or a
 * Docker archive ({@code manifest.json} with {@code Config} and {@code Layers} paths; {@code docker save},
 * {@code podman save}, {@code skopeo copy … docker-archive:}). Every blob is verified against its sha256 while read.
 * Entries are read in place (the archive is indexed once), nothing is copied.
 */
final class ArchiveSource implements ImportSource {
    enum Kind { OCI, DOCKER }

    private static final long MAX_JSON = 16L << 20;
    private static final Pattern BLOB_PATH = Pattern.compile("(?:.*/)?blobs/sha256/([0-9a-f]{64})");
    private static final Pattern HEX_JSON = Pattern.compile("(?:.*/)?([0-9a-f]{64})\\.json");
    private static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    private static final String DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";

    private record Entry(long offset, long size) {}

    private final Kind kind;
    private final Path archive;
    private final String os;
    private final String arch;
    private Map<String, Entry> entries;

    ArchiveSource(Kind kind, Path archive) {
        this(kind, archive, "linux", "amd64");
    }

    ArchiveSource(Kind kind, Path archive, String os, String arch) {
        this.kind = kind;
        this.archive = archive;
        this.os = os;
        this.arch = arch;
    }

    @Override
    public Resolved resolve(CancelToken cancel) throws IOException {
        entries = index(archive);
        boolean hasOci = entries.containsKey("index.json");
        boolean hasDocker = entries.containsKey("manifest.json");
        if (kind == Kind.DOCKER && hasDocker || !hasOci && hasDocker) return docker();
        if (hasOci) return oci();
        throw new ImportFailure("the archive has neither index.json (OCI image layout) nor manifest.json (docker save format)");
    }

    // ------------------------------------------------------------------------------------------------ archive access

    private static Map<String, Entry> index(Path archive) throws IOException {
        try (InputStream in = Files.newInputStream(archive)) {
            byte[] magic = in.readNBytes(4);
            if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b
                    || magic.length == 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5) {
                throw new ImportFailure("compressed archives are not supported: upload the uncompressed tar (e.g. `docker save -o image.tar`)");
            }
        }
        Map<String, Entry> out = new HashMap<>();
        try (TarFile tar = new TarFile(archive)) {
            for (TarArchiveEntry e : tar.getEntries()) {
                if (!e.isFile()) continue;
                out.put(normalize(e.getName()), new Entry(e.getDataOffset(), e.getSize()));
            }
        } catch (IOException | RuntimeException e) {
            throw new ImportFailure("the uploaded file is not a readable tar archive: " + e.getMessage(), e);
        }
        return out;
    }

    private static String normalize(String name) {
        String n = name;
        while (n.startsWith("./") || n.startsWith("/")) n = n.startsWith("./") ? n.substring(2) : n.substring(1);
        return n;
    }

    private InputStream openEntry(String name) throws IOException {
        Entry e = entries.get(normalize(name));
        if (e == null) throw new ImportFailure("the archive has no file " + name);
        FileChannel ch = FileChannel.open(archive, StandardOpenOption.READ);
        ch.position(e.offset());
        InputStream in = Channels.newInputStream(ch);
        return new java.io.FilterInputStream(in) {
            private long left = e.size();

            @Override
            public int read() throws IOException {
                if (left <= 0) return -1;
                int b = super.read();
                if (b >= 0) left--;
                return b;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (left <= 0) return -1;
                int n = super.read(b, off, (int) Math.min(len, left));
                if (n > 0) left -= n;
                return n;
            }

            @Override
            public long skip(long n) throws IOException {
                long s = super.skip(Math.min(n, left));
                left -= s;
                return s;
            }

            @Override
            public int available() throws IOException {
                return (int) Math.min(super.available(), left);
            }
        };
    }

    private long entrySize(String name) throws ImportFailure {
        Entry e = entries.get(normalize(name));
        if (e == null) throw new ImportFailure("the archive has no file " + name);
        return e.size();
    }

    private byte[] readJson(String name, String expectedDigest) throws IOException {
        long size = entrySize(name);
        if (size > MAX_JSON) throw new ImportFailure(name + " is too large (" + size + " bytes)");
        byte[] bytes;
        try (InputStream in = openEntry(name)) {
            bytes = in.readAllBytes();
        }
        if (expectedDigest != null && !BlobStream.sha256(bytes).equals(expectedDigest)) {
            throw new ImportFailure(name + " digest mismatch: expected " + expectedDigest + ", got " + BlobStream.sha256(bytes));
        }
        return bytes;
    }

    /** One of {@link OciJson}'s parsers. */
    @FunctionalInterface
    private interface JsonParser<T> {
        T parse(byte[] json) throws OciJson.InvalidJson;
    }

    /** Parses one JSON file of the archive; {@code what} names the document for a shape error. */
    private static <T> T parse(String name, String what, JsonParser<T> parser, byte[] bytes) throws ImportFailure {
        try {
            return parser.parse(bytes);
        } catch (OciJson.InvalidJson e) {
            throw new ImportFailure(e.isSyntaxError() ? name + " is not valid JSON: " + e.getMessage()
                : name + " is not a valid " + what + ": " + e.getMessage());
        }
    }

    private static String blobPath(String digest) throws ImportFailure {
        if (digest == null || !digest.matches("sha256:[0-9a-f]{64}")) throw new ImportFailure("unsupported digest '" + digest + "' (only sha256)");
        return "blobs/sha256/" + digest.substring(7);
    }

    private Layer layer(String path, String digest, long declaredSize, String what) {
        return new Layer() {
            @Override public String digest() { return digest; }
            @Override public long size() { return declaredSize; }

            @Override
            public InputStream open() throws IOException {
                return BlobStream.verifying(openEntry(path), digest, declaredSize, what);
            }
        };
    }

    // ------------------------------------------------------------------------------------------------ OCI layout

    private Resolved oci() throws IOException {
        OciJson.Manifest index = parse("index.json", "image index", OciJson::manifest, readJson("index.json", null)).orElse(EMPTY);
        List<OciJson.ContentDescriptor> queue = new ArrayList<>(candidates(index.manifests()));
        List<String> seen = new ArrayList<>();
        for (int steps = 0; !queue.isEmpty() && steps < 64; steps++) {
            OciJson.ContentDescriptor d = queue.removeFirst();
            String digest = d.digest();
            String path = blobPath(digest);
            byte[] bytes = readJson(path, digest);
            OciJson.Manifest m = parse(path, "image manifest", OciJson::manifest, bytes).orElse(EMPTY);
            String mt = d.mediaType() != null ? d.mediaType() : Objects.requireNonNullElse(m.mediaType(), "");
            if (mt.equals(OCI_INDEX) || mt.equals(DOCKER_LIST) || m.manifests() != null) {
                queue.addAll(0, candidates(m.manifests()));
                continue;
            }
            String cfgDigest = m.config() == null ? null : m.config().digest();
            OciJson.Configuration config = configJson("config", readJson(blobPath(cfgDigest), cfgDigest));
            dev.contree.registry.ImageConfig image = config.toImageConfig();
            if (!platformOk(image)) {
                seen.add(image.os() + "/" + image.architecture());
                continue;
            }
            List<Layer> layers = new ArrayList<>();
            for (OciJson.ContentDescriptor l : Objects.requireNonNullElse(m.layers(), List.<OciJson.ContentDescriptor>of())) {
                if (l == null) l = OciJson.ContentDescriptor.ABSENT;
                Descriptor desc = new Descriptor(Objects.requireNonNullElse(l.mediaType(), ""), l.digest(), l.size() == null ? -1 : l.size());
                if (!desc.isLayer()) throw new ImportFailure("layer " + desc.digest() + " has unsupported media type '" + desc.mediaType() + "'");
                String lp = blobPath(desc.digest());
                if (desc.size() >= 0 && entrySize(lp) != desc.size()) {
                    throw new ImportFailure("layer " + desc.digest() + " size mismatch: expected " + desc.size() + " bytes, archive has " + entrySize(lp));
                }
                layers.add(layer(lp, desc.digest(), desc.size(), "layer " + desc.digest()));
            }
            return new Resolved(layers, runSettings(image));
        }
        throw new ImportFailure("the archive has no " + os + "/" + arch + " image" + (seen.isEmpty() ? "" : " (found " + String.join(", ", seen) + ")"));
    }

    /** An index or manifest that is JSON but not an object: nothing in it. */
    private static final OciJson.Manifest EMPTY = new OciJson.Manifest(null, null, null, null, null);

    /** Index entries worth trying, the ones whose platform matches first; other platforms and attestations are skipped. */
    private List<OciJson.ContentDescriptor> candidates(List<OciJson.ContentDescriptor> manifests) {
        List<OciJson.ContentDescriptor> match = new ArrayList<>();
        List<OciJson.ContentDescriptor> unknown = new ArrayList<>();
        if (manifests == null) return match;
        for (OciJson.ContentDescriptor d : manifests) {
            if (d == null) d = OciJson.ContentDescriptor.ABSENT;
            OciJson.Platform p = d.platform();
            if (p == null) {
                unknown.add(d);
            } else if (os.equals(Objects.requireNonNullElse(p.os(), "")) && arch.equals(Objects.requireNonNullElse(p.architecture(), ""))) {
                String v = Objects.requireNonNullElse(p.variant(), "");
                if (v.isEmpty() || v.equals("v1")) match.addFirst(d);
                else match.add(d);
            }
        }
        match.addAll(unknown);
        return match;
    }

    private boolean platformOk(dev.contree.registry.ImageConfig config) {
        String o = config.os();
        String a = config.architecture();
        return (o.isEmpty() || o.equals(os)) && (a.isEmpty() || a.equals(arch));
    }

    // ------------------------------------------------------------------------------------------------ docker save

    private Resolved docker() throws IOException {
        List<OciJson.DockerArchiveImage> manifest = parse("manifest.json", "docker save manifest", OciJson::dockerArchive,
                readJson("manifest.json", null));
        if (manifest.isEmpty()) throw new ImportFailure("manifest.json lists no image");
        List<String> seen = new ArrayList<>();
        for (OciJson.DockerArchiveImage img : manifest) {
            String cfgPath = img.config();
            if (cfgPath == null) throw new ImportFailure("manifest.json: an image has no Config");
            OciJson.Configuration config = configJson(cfgPath, readJson(cfgPath, digestFromPath(cfgPath)));
            dev.contree.registry.ImageConfig image = config.toImageConfig();
            if (!platformOk(image)) {
                seen.add(image.os() + "/" + image.architecture());
                continue;
            }
            List<String> diffIds = config.diffIds();
            List<String> paths = Objects.requireNonNullElse(img.layers(), List.of());
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < paths.size(); i++) {
                String lp = paths.get(i);
                if (lp == null) throw new ImportFailure("manifest.json: an image lists a layer without a path");
                // Named by digest (OCI-style blobs/sha256/<hex>), or legacy <id>/layer.tar: an uncompressed tar whose sha256 is the diff_id.
                String digest = digestFromPath(lp);
                if (digest == null && i < diffIds.size()) digest = diffIds.get(i);
                if (digest == null || !digest.matches("sha256:[0-9a-f]{64}")) {
                    throw new ImportFailure("layer " + lp + " has no sha256 to verify it against (config rootfs.diff_ids)");
                }
                layers.add(layer(lp, digest, entrySize(lp), "layer " + lp));
            }
            return new Resolved(layers, runSettings(image));
        }
        throw new ImportFailure("the archive has no " + os + "/" + arch + " image (found " + String.join(", ", seen) + ")");
    }

    private static String digestFromPath(String path) {
        String p = normalize(path);
        Matcher m = BLOB_PATH.matcher(p);
        if (m.matches()) return "sha256:" + m.group(1);
        m = HEX_JSON.matcher(p);
        if (m.matches()) return "sha256:" + m.group(1);
        return null;
    }

    // ------------------------------------------------------------------------------------------------ config

    /** A config that is JSON but not an object counts as an empty one (no platform, nothing to set). */
    private static OciJson.Configuration configJson(String name, byte[] bytes) throws ImportFailure {
        return parse(name, "image config", OciJson::configuration, bytes).orElse(new OciJson.Configuration(null, null, null, null));
    }

    private static ImageConfig runSettings(dev.contree.registry.ImageConfig c) {
        return new ImageConfig(c.envMap(), c.workingDir(), c.user());
    }
}

package dev.contree.objects;

import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;

import java.io.FilterInputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;

/**
 * {@link ObjectStore} on S3 or any S3-compatible service, through the AWS SDK v2's synchronous client over the JDK's
 * {@code HttpURLConnection} (the SDK's url-connection-client: no Netty or Apache transport on the class path; every
 * call here blocks a virtual thread anyway).
 *
 * <p>Integrity: the SDK's default flexible checksums (trailing CRC32 in aws-chunked bodies) are switched to "when
 * required", because S3-compatible servers differ in what they accept; instead each PUT carries the object's
 * SHA-256 ({@code x-amz-checksum-sha256}), which S3 checks before it stores anything, and this class hashes the file
 * while sending it and removes the object if the bytes sent did not match. Reads are checked by the caller.
 */
public final class S3ObjectStore implements ObjectStore {
    /** Objects larger than this go up in parts (one PUT takes at most 5 GiB). */
    static final long MULTIPART_THRESHOLD = 256L << 20;
    static final long PART_BYTES = 64L << 20;

    private final S3Client s3;
    private final ObjectStoreUrl url;
    private final long multipartThreshold, partBytes;

    private S3ObjectStore(S3Client s3, ObjectStoreUrl url, long multipartThreshold, long partBytes) {
        this.s3 = s3;
        this.url = url;
        this.multipartThreshold = multipartThreshold;
        this.partBytes = partBytes;
    }

    public static S3ObjectStore open(ObjectStoreUrl url) {
        return open(url, MULTIPART_THRESHOLD, PART_BYTES);
    }

    /** With other multipart sizes (tests; S3 wants parts of at least 5 MiB but the last). */
    static S3ObjectStore open(ObjectStoreUrl url, long multipartThreshold, long partBytes) {
        var builder = S3Client.builder()
                .httpClient(UrlConnectionHttpClient.builder()
                        .connectionTimeout(Duration.ofSeconds(10))
                        .socketTimeout(Duration.ofMinutes(2))
                        .build())
                .credentialsProvider(DefaultCredentialsProvider.builder().build())
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        Region region;
        if (url.region() != null) region = Region.of(url.region());
        else if (url.endpoint() != null) region = Region.US_EAST_1; // S3-compatible services mostly ignore it
        else region = DefaultAwsRegionProviderChain.builder().build().getRegion();
        builder.region(region);
        if (url.endpoint() != null) builder.endpointOverride(url.endpoint()).forcePathStyle(true);
        return new S3ObjectStore(builder.build(), url, multipartThreshold, partBytes);
    }

    private String key(ObjectKey key) {
        return url.prefix() + key.path();
    }

    @Override
    public void put(ObjectKey key, Path file) throws IOException {
        if (exists(key)) return; // same key, same bytes
        long size = Files.size(file);
        if (size > multipartThreshold) {
            putInParts(key, file, size);
            return;
        }
        MessageDigest digest = Sha256.digest();
        String checksum = Base64.getEncoder().encodeToString(HexFormat.of().parseHex(key.sha256()));
        // Opened again for each attempt the SDK makes, the hash starting over with it.
        software.amazon.awssdk.http.ContentStreamProvider body = () -> {
            digest.reset();
            try {
                return new HashingStream(Files.newInputStream(file), digest);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
        try {
            s3.putObject(b -> b.bucket(url.bucket()).key(key(key)).contentLength(size).checksumSHA256(checksum),
                    RequestBody.fromContentProvider(body, size, "application/octet-stream"));
        } catch (java.io.UncheckedIOException e) {
            throw e.getCause();
        } catch (SdkException e) {
            throw failure("storing " + key, e);
        }
        String sent = Sha256.hex(digest);
        if (!sent.equals(key.sha256())) {
            delete(key);
            throw new IOException("the file for " + key + " changed while it was uploaded (it hashed to sha256:" + sent + ")");
        }
    }

    /**
     * A multipart upload, parts in order, the whole file hashed as it is sent (S3 checks each part's own checksum
     * then; the whole object's sha256 is this side's check, and every reader's). Aborted on any failure, so no part
     * stays billed; the object appears only with the complete call.
     */
    private void putInParts(ObjectKey key, Path file, long size) throws IOException {
        String k = key(key);
        String uploadId;
        try {
            // S3 takes part checksums only for an upload created with their algorithm.
            uploadId = s3.createMultipartUpload(b -> b.bucket(url.bucket()).key(k)
                    .checksumAlgorithm(software.amazon.awssdk.services.s3.model.ChecksumAlgorithm.SHA256)).uploadId();
        } catch (SdkException e) {
            throw failure("storing " + key, e);
        }
        MessageDigest whole = Sha256.digest();
        List<CompletedPart> parts = new ArrayList<>();
        boolean done = false;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            for (long offset = 0; offset < size; offset += partBytes) {
                int n = (int) Math.min(partBytes, size - offset);
                ByteBuffer buf = ByteBuffer.allocate(n);
                while (buf.hasRemaining()) if (ch.read(buf, offset + buf.position()) < 0) throw new IOException(file + " shrank while uploaded");
                byte[] bytes = buf.array();
                whole.update(bytes);
                String partSha = Base64.getEncoder().encodeToString(Sha256.digest().digest(bytes));
                int number = parts.size() + 1;
                String etag = s3.uploadPart(b -> b.bucket(url.bucket()).key(k).uploadId(uploadId).partNumber(number)
                        .contentLength((long) n).checksumSHA256(partSha), RequestBody.fromBytes(bytes)).eTag();
                parts.add(CompletedPart.builder().partNumber(number).eTag(etag).checksumSHA256(partSha).build());
            }
            String sent = Sha256.hex(whole);
            if (!sent.equals(key.sha256())) {
                throw new IOException("the file for " + key + " changed while it was uploaded (it hashed to sha256:" + sent + ")");
            }
            s3.completeMultipartUpload(b -> b.bucket(url.bucket()).key(k).uploadId(uploadId)
                    .multipartUpload(m -> m.parts(parts)));
            done = true;
        } catch (SdkException e) {
            throw failure("storing " + key + " in parts", e);
        } finally {
            if (!done) {
                try {
                    s3.abortMultipartUpload(b -> b.bucket(url.bucket()).key(k).uploadId(uploadId));
                } catch (SdkException ignored) {
                    // the bucket's lifecycle rule for incomplete uploads is the backstop
                }
            }
        }
    }

    @Override
    public InputStream open(ObjectKey key) throws IOException {
        try {
            return s3.getObject(b -> b.bucket(url.bucket()).key(key(key)));
        } catch (NoSuchKeyException e) {
            throw new NoSuchFileException("object " + key + " is not in " + url);
        } catch (SdkException e) {
            throw failure("reading " + key, e);
        }
    }

    @Override
    public boolean exists(ObjectKey key) throws IOException {
        try {
            s3.headObject(b -> b.bucket(url.bucket()).key(key(key)));
            return true;
        } catch (NoSuchKeyException e) {
            return false;
        } catch (S3Exception e) {
            if (e.statusCode() == 404) return false;
            throw failure("looking up " + key, e);
        } catch (SdkException e) {
            throw failure("looking up " + key, e);
        }
    }

    @Override
    public void delete(ObjectKey key) throws IOException {
        try {
            s3.deleteObject(b -> b.bucket(url.bucket()).key(key(key)));
        } catch (SdkException e) {
            throw failure("deleting " + key, e);
        }
    }

    @Override
    public Listing list(String after, int max) throws IOException {
        try {
            var page = s3.listObjectsV2(b -> {
                b.bucket(url.bucket()).prefix(url.prefix()).maxKeys(Math.max(1, Math.min(max, 1000)));
                if (after != null) b.continuationToken(after);
            });
            List<Listed> out = new ArrayList<>(page.contents().size());
            for (var o : page.contents()) {
                String name = o.key().substring(url.prefix().length());
                out.add(new Listed(ObjectKey.fromPath(name), name, o.size() == null ? 0 : o.size()));
            }
            return new Listing(out, Boolean.TRUE.equals(page.isTruncated()) ? page.nextContinuationToken() : null);
        } catch (SdkException e) {
            throw failure("listing " + url.prefix(), e);
        }
    }

    /** One DeleteObjects request per 1,000 keys (S3's bound); a key the store could not delete fails the call. */
    @Override
    public void deleteAll(List<ObjectKey> keys) throws IOException {
        for (int from = 0; from < keys.size(); from += 1000) {
            List<software.amazon.awssdk.services.s3.model.ObjectIdentifier> ids = new ArrayList<>();
            for (ObjectKey k : keys.subList(from, Math.min(keys.size(), from + 1000))) {
                ids.add(software.amazon.awssdk.services.s3.model.ObjectIdentifier.builder().key(key(k)).build());
            }
            try {
                var r = s3.deleteObjects(b -> b.bucket(url.bucket()).delete(d -> d.objects(ids).quiet(true)));
                if (r.hasErrors() && !r.errors().isEmpty()) {
                    var e = r.errors().getFirst();
                    throw new IOException("object store " + url + ": deleting " + e.key() + " failed: " + e.code() + " " + e.message()
                            + (r.errors().size() > 1 ? " (and " + (r.errors().size() - 1) + " more)" : ""));
                }
            } catch (SdkException e) {
                throw failure("deleting " + ids.size() + " objects", e);
            }
        }
    }

    /** Creates the bucket if it does not exist (tests and a first start against an empty S3-compatible server). */
    public void createBucketIfMissing() throws IOException {
        try {
            s3.headBucket(b -> b.bucket(url.bucket()));
        } catch (S3Exception e) {
            if (e.statusCode() != 404) throw failure("looking up bucket " + url.bucket(), e);
            try {
                s3.createBucket(b -> b.bucket(url.bucket()));
            } catch (SdkException ce) {
                throw failure("creating bucket " + url.bucket(), ce);
            }
        } catch (SdkException e) {
            throw failure("looking up bucket " + url.bucket(), e);
        }
    }

    @Override
    public String describe() {
        return url.toString();
    }

    @Override
    public void close() {
        s3.close();
    }

    private IOException failure(String what, SdkException e) {
        return new IOException("object store " + url + ": " + what + " failed: " + e.getMessage(), e);
    }

    /** Hashes what is read through it. */
    private static final class HashingStream extends FilterInputStream {
        private final MessageDigest digest;

        HashingStream(InputStream in, MessageDigest digest) {
            super(in);
            this.digest = digest;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) digest.update((byte) b);
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) digest.update(b, off, n);
            return n;
        }

        @Override public boolean markSupported() { return false; }
    }
}

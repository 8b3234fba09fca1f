package dev.contree;

import dev.contree.objects.ObjectStoreUrl;
import dev.contree.objects.S3ObjectStore;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.auth.AuthenticationType;
import org.gaul.s3proxy.nio2blob.FilesystemNio2BlobStore;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A real S3-protocol server for tests: S3Proxy with its filesystem backend, in this JVM, on a free 127.0.0.1 port,
 * AWS signature v4 with a fixed test identity. The SDK finds the identity the way a server finds real credentials:
 * here through the {@code aws.accessKeyId}/{@code aws.secretAccessKey} system properties, part of its default chain.
 * {@link #close} stops it and removes its directory. Objects are files under {@link #dir}{@code /<bucket>/…}, so a
 * test can corrupt one.
 */
public final class TestS3 implements AutoCloseable {
    public static final String IDENTITY = "contree-test";
    public static final String SECRET = "contree-test-secret";
    private static final AtomicInteger BUCKETS = new AtomicInteger();

    public final Path dir;
    private final S3Proxy proxy;

    private TestS3(Path dir, S3Proxy proxy) {
        this.dir = dir;
        this.proxy = proxy;
    }

    public static TestS3 start() throws Exception {
        System.setProperty("aws.accessKeyId", IDENTITY);
        System.setProperty("aws.secretAccessKey", SECRET);
        Path dir = Files.createTempDirectory("contree-s3");
        S3Proxy proxy = S3Proxy.builder()
                .blobStore(new FilesystemNio2BlobStore(dir.toString()))
                .endpoint(URI.create("http://127.0.0.1:0"))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, IDENTITY, SECRET)
                .build();
        proxy.start();
        for (int i = 0; i < 200 && !"STARTED".equals(proxy.getState()); i++) Thread.sleep(25);
        return new TestS3(dir, proxy);
    }

    public int port() {
        return proxy.getPort();
    }

    /** A new empty bucket, as the {@code s3://} URL a server takes (with a key prefix, as a shared bucket would have). */
    public String newBucket() throws IOException {
        String bucket = "contree-" + BUCKETS.incrementAndGet();
        ObjectStoreUrl url = ObjectStoreUrl.parse(url(bucket));
        try (S3ObjectStore s3 = S3ObjectStore.open(url)) {
            s3.createBucketIfMissing();
        }
        return url(bucket);
    }

    private String url(String bucket) {
        return "s3://" + bucket + "/cluster-a?endpoint=http://127.0.0.1:" + port() + "&region=us-east-1";
    }

    /** The files holding the objects of a bucket (the filesystem backend's own layout). */
    public Stream<Path> objectFiles(String url) throws IOException {
        Path bucketDir = dir.resolve(ObjectStoreUrl.parse(url).bucket());
        return Files.walk(bucketDir).filter(Files::isRegularFile);
    }

    @Override
    public void close() throws Exception {
        proxy.stop();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(p);
        }
    }
}
